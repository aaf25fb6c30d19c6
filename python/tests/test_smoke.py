"""The basics every other test builds on."""


def test_run_returns_the_result(aio):
    async def main():
        await aio.sleep(0)
        return 42
    assert aio.run(main()) == 42


def test_tasks_interleave_round_robin(aio):
    order = []

    async def worker(name):
        for i in range(3):
            order.append((name, i))
            await aio.sleep(0)

    async def main():
        await aio.gather(worker("a"), worker("b"), worker("c"))

    aio.run(main())
    assert order == [(n, i) for i in range(3) for n in "abc"]
