"""wait() with each return_when and a timeout, and as_completed(): order,
timeout, errors. The async-iterator form of as_completed is CPython 3.13's;
it runs against asyncio where the interpreter has it."""

import sys

import pytest

import uvasync


async def _after(aio, delay, value):
    await aio.sleep(delay)
    return value


async def _fail_after(aio, delay, exc):
    await aio.sleep(delay)
    raise exc


def test_wait_all_completed_returns_when_every_task_is_done(aio):
    async def main():
        tasks = [aio.create_task(_after(aio, d, d)) for d in (0.02, 0.01)]
        done, pending = await aio.wait(tasks)
        assert done == set(tasks) and pending == set()
        assert sorted(t.result() for t in done) == [0.01, 0.02]

    aio.run(main())


def test_wait_first_completed_returns_at_the_first_end(aio):
    async def main():
        fast = aio.create_task(_after(aio, 0.01, "fast"))
        slow = aio.create_task(_after(aio, 10, "slow"))
        done, pending = await aio.wait(
            [slow, fast], return_when=aio.FIRST_COMPLETED
        )
        assert done == {fast} and pending == {slow}
        assert not slow.done()  # wait() cancels nothing
        slow.cancel()

    aio.run(main())


def test_wait_first_exception_returns_at_the_first_failure(aio):
    async def main():
        ok = aio.create_task(_after(aio, 0.01, "ok"))
        bad = aio.create_task(_fail_after(aio, 0.02, ValueError("x")))
        slow = aio.create_task(_after(aio, 10, "slow"))
        done, pending = await aio.wait(
            [ok, bad, slow], return_when=aio.FIRST_EXCEPTION
        )
        assert done == {ok, bad} and pending == {slow}
        assert isinstance(bad.exception(), ValueError)
        slow.cancel()

    aio.run(main())


def test_wait_first_exception_without_failures_waits_for_all(aio):
    async def main():
        tasks = [aio.create_task(_after(aio, d, d)) for d in (0.01, 0.02)]
        done, pending = await aio.wait(tasks, return_when=aio.FIRST_EXCEPTION)
        assert done == set(tasks) and not pending

    aio.run(main())


def test_wait_with_a_timeout_returns_what_is_done_then(aio):
    async def main():
        loop = aio.get_running_loop()
        fast = aio.create_task(_after(aio, 0.01, "fast"))
        slow = aio.create_task(_after(aio, 10, "slow"))
        t0 = loop.time()
        for how in (aio.ALL_COMPLETED, aio.FIRST_EXCEPTION):
            done, pending = await aio.wait(
                [fast, slow], timeout=0.05, return_when=how
            )
            assert done == {fast} and pending == {slow}
        assert loop.time() - t0 < 5
        assert not slow.done()  # no TimeoutError, nothing cancelled
        slow.cancel()

    aio.run(main())


def test_wait_refuses_coroutines_an_empty_set_and_bad_return_when(aio):
    async def main():
        coro = _after(aio, 0, 1)
        with pytest.raises(TypeError):
            await aio.wait([coro])
        coro.close()
        with pytest.raises(ValueError):
            await aio.wait([])
        task = aio.create_task(_after(aio, 0, 1))
        with pytest.raises(ValueError):
            await aio.wait([task], return_when="SOMETIMES")
        await task

    aio.run(main())


def test_wait_takes_futures_and_already_finished_tasks(aio):
    async def main():
        loop = aio.get_running_loop()
        fut = loop.create_future()
        finished = aio.create_task(_after(aio, 0, "x"))
        await finished
        loop.call_later(0.01, fut.set_result, "fut")
        done, pending = await aio.wait([fut, finished])
        assert done == {fut, finished} and not pending

    aio.run(main())


def test_as_completed_gives_results_in_finishing_order(aio):
    async def main():
        tasks = [
            aio.create_task(_after(aio, d, d)) for d in (0.03, 0.01, 0.02)
        ]
        out = []
        for next_done in aio.as_completed(tasks):
            out.append(await next_done)
        return out

    assert aio.run(main()) == [0.01, 0.02, 0.03]


def test_as_completed_runs_coroutines_as_tasks(aio):
    async def main():
        coros = [_after(aio, d, d) for d in (0.02, 0.01)]
        return [await f for f in aio.as_completed(coros)]

    assert aio.run(main()) == [0.01, 0.02]


def test_as_completed_raises_what_the_task_raised(aio):
    async def main():
        out = []
        for f in aio.as_completed(
            [_after(aio, 0.02, "late"), _fail_after(aio, 0.01, KeyError("k"))]
        ):
            try:
                out.append(await f)
            except KeyError:
                out.append("KeyError")
        return out

    assert aio.run(main()) == ["KeyError", "late"]


def test_as_completed_timeout_raises_for_what_is_left(aio):
    async def main():
        slow = aio.create_task(_after(aio, 10, "slow"))
        fast = aio.create_task(_after(aio, 0.01, "fast"))
        out = []
        for f in aio.as_completed([slow, fast], timeout=0.05):
            try:
                out.append(await f)
            except TimeoutError:
                out.append("timeout")
        assert not slow.done()  # nothing is cancelled
        slow.cancel()
        return out

    assert aio.run(main()) == ["fast", "timeout"]


def test_as_completed_refuses_a_single_future(aio):
    async def main():
        task = aio.create_task(_after(aio, 0, 1))
        with pytest.raises(TypeError):  # (3.11: at the first next())
            next(iter(aio.as_completed(task)))
        await task

    aio.run(main())


MODULES_WITH_ASYNC_AS_COMPLETED = [uvasync] + (
    [__import__("asyncio")] if sys.version_info >= (3, 13) else []
)


@pytest.mark.parametrize(
    "aio", MODULES_WITH_ASYNC_AS_COMPLETED, ids=lambda m: m.__name__
)
def test_as_completed_async_iteration_gives_the_tasks(aio):
    async def main():
        tasks = [aio.create_task(_after(aio, d, d)) for d in (0.02, 0.01)]
        seen = []
        async for t in aio.as_completed(tasks):
            assert t in tasks  # the task itself, done
            seen.append(t.result())
        return seen

    assert aio.run(main()) == [0.01, 0.02]


@pytest.mark.parametrize(
    "aio", MODULES_WITH_ASYNC_AS_COMPLETED, ids=lambda m: m.__name__
)
def test_as_completed_async_iteration_with_a_timeout(aio):
    async def main():
        slow = aio.create_task(_after(aio, 10, "slow"))
        fast = aio.create_task(_after(aio, 0.01, "fast"))
        seen = []
        with pytest.raises(TimeoutError):
            async for t in aio.as_completed([slow, fast], timeout=0.05):
                seen.append(t.result())
        slow.cancel()
        return seen

    assert aio.run(main()) == ["fast"]
