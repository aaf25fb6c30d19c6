"""A small job system written against CPython's asyncio API, run unchanged
on uvasync: `python jobs.py uvasync` or `python jobs.py asyncio`. Its
output must be the same on both.

A TCP service squares numbers (slowly for some); workers in a TaskGroup
meet at a Barrier, take jobs from a PriorityQueue and call the service
under timeout(); results are collected under a Condition; a thread submits
one more job with run_coroutine_threadsafe; as_completed and wait() fetch
a few answers directly; a failing job makes a second TaskGroup raise an
ExceptionGroup. One Runner runs the setup, the work and the teardown."""

import importlib
import sys
import threading

aio = importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else "uvasync")

if sys.version_info < (3, 11):  # ExceptionGroup is built in from 3.11
    from exceptiongroup import ExceptionGroup


HANDLERS = set()


async def serve(reader, writer):
    HANDLERS.add(aio.current_task())
    while True:
        line = await reader.readline()
        if not line:
            break
        n = int(line)
        await aio.sleep(0.3 if n == 13 else 0.002 * n)  # 13 is unlucky
        writer.write(b"%d\n" % (n * n))
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def ask(port, n):
    reader, writer = await aio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"%d\n" % n)
        await writer.drain()
        return int(await reader.readline())
    finally:
        writer.close()
        await writer.wait_closed()


class Results:
    def __init__(self):
        self.items = {}
        self.cond = aio.Condition()

    async def add(self, key, value):
        async with self.cond:
            self.items[key] = value
            self.cond.notify_all()
        return "added %s" % key

    async def wait_count(self, n):
        async with self.cond:
            await self.cond.wait_for(lambda: len(self.items) >= n)
            return dict(self.items)


async def worker(name, port, jobs, barrier, results, started):
    started.append(await barrier.wait())
    while True:
        prio, n = await jobs.get()
        try:
            if n is None:
                return
            try:
                async with aio.timeout(0.1):
                    value = await ask(port, n)
            except TimeoutError:
                value = "timeout"
            await results.add(n, value)
        finally:
            jobs.task_done()


async def setup():
    server = await aio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def work(port, loop_box):
    loop_box.append(aio.get_running_loop())
    jobs = aio.PriorityQueue()
    results = Results()
    barrier = aio.Barrier(3)
    started = []
    for n in (5, 1, 13, 3, 8, 2):
        jobs.put_nowait((n % 4, n))

    async with aio.TaskGroup() as tg:
        for i in range(3):
            tg.create_task(
                worker("w%d" % i, port, jobs, barrier, results, started),
                name="worker-%d" % i,
            )
        watcher = tg.create_task(results.wait_count(7))
        await jobs.join()
        print("barrier indices:", sorted(started))
        # one job comes from another thread
        box = {}

        def from_thread():
            fut = aio.run_coroutine_threadsafe(
                results.add(100, "thread"), loop_box[0]
            )
            box["result"] = fut.result(5)

        thread = threading.Thread(target=from_thread)
        thread.start()
        done, pending = await aio.wait([watcher], timeout=5)
        thread.join(5)
        print(
            "watcher done:",
            watcher in done,
            "thread result:",
            box.get("result"),
        )
        for _ in range(3):
            jobs.put_nowait((99, None))
    print("results:", sorted(results.items.items(), key=lambda kv: kv[0]))

    answers = []
    # answers 80, 8 and 40 ms after the ask: an order no load can swap
    for next_done in aio.as_completed([ask(port, n) for n in (40, 4, 20)]):
        answers.append(await next_done)
    print("as_completed:", answers)

    async def fails():
        await aio.sleep(0.01)
        raise ValueError("bad job")

    try:
        async with aio.TaskGroup() as tg:
            tg.create_task(fails())
            slow = tg.create_task(ask(port, 13))
    except ExceptionGroup as eg:
        print(
            "group failed:",
            [str(e) for e in eg.exceptions],
            "sibling cancelled:",
            slow.cancelled(),
        )

    shielded = aio.create_task(ask(port, 7))
    try:
        await aio.wait_for(aio.shield(shielded), 0.001)
    except TimeoutError:
        print("shield: timed out, inner still running:", not shielded.done())
    print("shield: inner result:", await shielded)
    return "ok"


async def teardown(server):
    await aio.wait(HANDLERS)  # the unlucky ones are still sleeping
    server.close()
    await server.wait_closed()
    return [t for t in aio.all_tasks() if t is not aio.current_task()]


def main():
    with aio.Runner() as runner:
        server, port = runner.run(setup())
        print("work:", runner.run(work(port, [])))
        print("tasks left:", runner.run(teardown(server)))


if __name__ == "__main__":
    main()
