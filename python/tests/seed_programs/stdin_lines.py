# Seed style on sys.stdin: count lines and bytes with a StreamReader, while
# another task keeps ticking.
import sys

import uasyncio as asyncio

ticks = 0


def ticker():
    global ticks
    while True:
        ticks += 1
        yield from asyncio.sleep_ms(1)


def count(reader):
    lines = 0
    size = 0
    while True:
        line = yield from reader.readline()
        if not line:
            break
        lines += 1
        size += len(line)
    print("lines", lines, "chars", size, "ticked", ticks > 0)


loop = asyncio.get_event_loop()
loop.create_task(ticker())
loop.run_until_complete(count(asyncio.StreamReader(sys.stdin)))
