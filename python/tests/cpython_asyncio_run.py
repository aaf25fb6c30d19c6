"""Runs CPython's own asyncio tests -- the test.test_asyncio package
installed with the interpreter that runs this script -- on uvasync.EventLoop
(or, with --loop asyncio, on asyncio's default loop: the reference).

    python cpython_asyncio_run.py [--loop uvasync|asyncio] [--json FILE]
                                  [--run-excluded] [-v] [MODULE ...]

The loop is installed as a user installs it: uvasync.install() (the policy)
before every test, since CPython's tests reset the policy in their
tearDown/tearDownModule. Test classes bound to a loop class of asyncio's
(SelectorEventLoop, ProactorEventLoop, test_utils.TestLoop) are run again
as "PolicyLoop..." subclasses whose loop is asyncio.new_event_loop(), i.e.
ours; the originals are excluded in cpython_asyncio_exclusions.txt, the one
list of every test not run, each with its category and reason.

Every loop made during a test is counted by type: in uvasync mode a test
that ran on one of asyncio's loops is an error, so a pass means "passed on
uvasync.EventLoop" (or on no loop at all, counted apart).

Exit status: 0 when every test run passed, 1 when one failed, 2 when the
interpreter has no test.test_asyncio (the run is then reported as not run).
"""

import argparse
import asyncio
import faulthandler
import fnmatch
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
EXCLUSIONS = os.path.join(HERE, "cpython_asyncio_exclusions.txt")

# The modules that exercise a loop through its public API.
MODULES = [
    "test_events",
    "test_base_events",
    "test_streams",
    "test_sock_lowlevel",
    "test_sendfile",
    "test_subprocess",
    "test_ssl",
    "test_sslproto",
    "test_server",
    "test_buffered_proto",
    "test_taskgroups",
    "test_timeouts",
    "test_queues",
    "test_locks",
    "test_tasks",
    "test_futures",
    "test_futures2",
    "test_context",
    "test_pep492",
    "test_runners",
    "test_waitfor",
    "test_threads",
    "test_protocols",
    "test_transports",
]

CATEGORIES = ("selector/proactor internals", "not built yet", "bug")

# A test that runs longer than this is stopped with its traceback.
TEST_TIMEOUT = 60.0


# --- which loop a test ran on ------------------------------------------------


class LoopCount:
    """The loops made during the current test, by kind."""

    def __init__(self):
        self.ours = 0
        self.theirs = []

    def reset(self):
        self.ours = 0
        self.theirs = []


LOOPS = LoopCount()


def count_loops(mode):
    """Wraps the constructors of asyncio's loops (BaseEventLoop, which all
    of asyncio's loops and test_utils.TestLoop derive from) and of ours so
    that every loop made is counted. On the reference run, "ours" are the
    loops the default policy makes (asyncio.new_event_loop())."""
    base = asyncio.base_events.BaseEventLoop
    base_init = base.__init__
    by_policy = []

    def asyncio_init(self, *args, **kwargs):
        if by_policy:
            LOOPS.ours += 1
        else:
            LOOPS.theirs.append(type(self).__name__)
        base_init(self, *args, **kwargs)

    base.__init__ = asyncio_init
    if mode.our_class is None:
        policy = asyncio.DefaultEventLoopPolicy
        policy_new = policy.new_event_loop

        def new_event_loop(self):
            by_policy.append(1)
            try:
                return policy_new(self)
            finally:
                by_policy.pop()

        policy.new_event_loop = new_event_loop
        return
    our_class = mode.our_class
    our_init = our_class.__init__

    def our_init_counted(self, *args, **kwargs):
        LOOPS.ours += 1
        our_init(self, *args, **kwargs)

    our_class.__init__ = our_init_counted


# --- the loop under test -----------------------------------------------------


class Mode:
    def __init__(self, name):
        self.name = name
        if name == "uvasync":
            import uvasync

            self.uvasync = uvasync
            self.our_class = uvasync.EventLoop
            # the loop factory, as asyncio.run(loop_factory=...) takes it
            self.factory = uvasync.EventLoop
        else:
            self.uvasync = None
            self.our_class = None
            self.factory = lambda: (
                asyncio.DefaultEventLoopPolicy().new_event_loop()
            )

    def install(self):
        """Installs the loop as a user would, before each test."""
        if self.uvasync is not None:
            self.uvasync.install()
        else:
            asyncio.set_event_loop_policy(None)


def new_loop(self=None):
    """The loop a user gets: asyncio.new_event_loop() under the policy."""
    return asyncio.new_event_loop()


# --- the classes run again on the policy's loop -------------------------------


def _subclass(mod, name, bases, body):
    cls = type(name, bases, dict(body, __module__=mod.__name__))
    cls.__qualname__ = name
    return cls


def adapted_classes(modname, mod, mode):
    """Test classes of `mod` rebuilt to run on asyncio.new_event_loop():
    {name: class}. The classes they replace are excluded (internals)."""
    from test.test_asyncio import utils as test_utils

    out = {}

    def add(name, *bases, **body):
        out[name] = _subclass(mod, name, bases, body)

    if modname == "test_events":
        add(
            "PolicyLoopTests",
            mod.EventLoopTestsMixin,
            mod.SubprocessTestsMixin,
            test_utils.TestCase,
            create_event_loop=new_loop,
        )
    elif modname in ("test_sock_lowlevel",):
        add(
            "PolicyLoopTests",
            mod.BaseSockTestsMixin,
            test_utils.TestCase,
            create_event_loop=new_loop,
        )
    elif modname == "test_sendfile":
        add(
            "PolicyLoopTests",
            mod.SendfileTestsBase,
            test_utils.TestCase,
            create_event_loop=new_loop,
        )
    elif modname == "test_subprocess":

        def setUp(self):
            test_utils.TestCase.setUp(self)
            self.loop = new_loop()
            self.set_event_loop(self.loop)

        add(
            "PolicyLoopTests",
            mod.SubprocessMixin,
            test_utils.TestCase,
            setUp=setUp,
        )
    elif modname == "test_server":
        add(
            "PolicyLoopStartServerTests",
            mod.SelectorStartServerTests,
            new_loop=new_loop,
        )
    elif modname == "test_sslproto":
        add(
            "PolicyLoopStartTLSTests",
            mod.SelectorStartTLSTests,
            new_loop=new_loop,
        )
    elif modname == "test_buffered_proto":
        add(
            "PolicyLoopTests",
            mod.BufferedProtocolSelectorTests,
            new_loop=new_loop,
        )
    elif modname == "test_pep492":
        # BaseTest makes a BaseEventLoop with a mocked selector.
        def setUp(self):
            test_utils.TestCase.setUp(self)
            self.loop = new_loop()
            self.set_event_loop(self.loop)

        for name in ("LockTests", "StreamReaderTests", "CoroutineTests"):
            add("PolicyLoop" + name, getattr(mod, name), setUp=setUp)
    elif modname == "test_base_events":
        # The tests of create_connection/create_server/... with a real loop.
        def setUp(self):
            test_utils.TestCase.setUp(self)
            self.loop = new_loop()
            self.set_event_loop(self.loop)

        add(
            "PolicyLoopWithSelectorTests",
            mod.BaseEventLoopWithSelectorTests,
            setUp=setUp,
        )
    elif modname == "test_runners":
        # BaseTest.new_loop makes a BaseEventLoop with a mocked selector
        # and notes that asyncio.run/Runner called shutdown_asyncgens.
        def runner_loop(self):
            loop = mode.factory()
            loop.shutdown_ag_run = False
            shutdown = loop.shutdown_asyncgens

            async def shutdown_asyncgens():
                loop.shutdown_ag_run = True
                await shutdown()

            loop.shutdown_asyncgens = shutdown_asyncgens
            return loop

        for name in ("RunTests", "RunnerTests"):
            add("PolicyLoop" + name, getattr(mod, name), new_loop=runner_loop)
    return out


def patch_test_utils(mode):
    """test_utils.TestCase.new_test_loop() without a generator gives the
    policy's loop: such a TestLoop has no clock a test could drive, so the
    test only needs a loop. With a generator (a fake clock) it stays
    test_utils.TestLoop, and those tests are excluded."""
    from test.test_asyncio import utils as test_utils

    fake_clock = test_utils.TestCase.new_test_loop

    def new_test_loop(self, gen=None):
        if gen is not None:
            return fake_clock(self, gen)
        loop = new_loop()
        self.set_event_loop(loop)
        return loop

    test_utils.TestCase.new_test_loop = new_test_loop


# --- exclusions --------------------------------------------------------------


class Exclusion:
    def __init__(self, pattern, category, reason, versions, line):
        self.pattern = pattern
        self.category = category
        self.reason = reason
        self.versions = versions
        self.line = line
        self.used = 0

    def applies_to(self, version):
        if not self.versions:
            return True
        m = re.fullmatch(r"(\d+\.\d+)(\+|-)?", self.versions)
        if not m:
            raise ValueError(
                f"line {self.line}: bad versions {self.versions!r}"
            )
        bound = tuple(int(x) for x in m.group(1).split("."))
        if m.group(2) == "+":
            return version >= bound
        if m.group(2) == "-":
            return version <= bound
        return version == bound

    def kind(self):
        return self.category.split(":")[0]


def read_exclusions(path=EXCLUSIONS):
    """`pattern | category | reason [| versions]` per line; `#` comments."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = [x.strip() for x in line.split("|")]
            if len(fields) not in (3, 4):
                raise ValueError(
                    f"{path}:{n}: want 'pattern | category | reason'"
                )
            pattern, category, reason = fields[:3]
            versions = fields[3] if len(fields) == 4 else ""
            if category.split(":")[0] not in CATEGORIES or not reason:
                raise ValueError(f"{path}:{n}: unknown category {category!r}")
            if category.startswith("not built yet") and ":" not in category:
                raise ValueError(f"{path}:{n}: say which part is not built")
            out.append(Exclusion(pattern, category, reason, versions, n))
    return out


def find_exclusion(test_id, exclusions):
    for ex in exclusions:
        if fnmatch.fnmatchcase(test_id, ex.pattern):
            return ex
    return None


# --- running -----------------------------------------------------------------


def short_id(test):
    """module.Class.method, without test.test_asyncio."""
    return test.id().replace("test.test_asyncio.", "", 1)


def iter_tests(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iter_tests(item)
        else:
            yield item


class Result(unittest.TextTestResult):
    """Installs the loop before each test, counts the loops a test made
    (a test that ran on one of asyncio's loops is an error) and writes each
    test's outcome to the progress stream as it ends."""

    def __init__(self, *args, mode, progress, **kwargs):
        super().__init__(*args, **kwargs)
        self.mode = mode
        self.progress = progress
        self._started = 0.0
        self._outcome = None
        self._traceback = []

    def startTest(self, test):
        self.mode.install()
        LOOPS.reset()
        self._outcome = None
        self._traceback = []
        emit(self.progress, ev="start", test=short_id(test))
        self._started = time.monotonic()
        faulthandler.dump_traceback_later(TEST_TIMEOUT, exit=True)
        super().startTest(test)

    def stopTest(self, test):
        faulthandler.cancel_dump_traceback_later()
        seconds = time.monotonic() - self._started
        if LOOPS.theirs:
            kinds = ", ".join(sorted(set(LOOPS.theirs)))
            loop = "theirs"
            if self._outcome in ("pass", None):
                self._outcome = "error"
                self._traceback.append(
                    f"ran on asyncio's {kinds}, not on the loop under test"
                )
        else:
            loop = "ours" if LOOPS.ours else "none"
        emit(
            self.progress,
            ev="done",
            test=short_id(test),
            outcome=self._outcome or "pass",
            loop=loop,
            seconds=round(seconds, 3),
            traceback="\n".join(self._traceback)[-3000:] or None,
        )
        super().stopTest(test)

    def _set(self, test, what, err=None):
        if err is not None:
            self._traceback.append(self._exc_info_to_string(err, test))
        if not isinstance(test, unittest.TestCase):
            # a failing setUpClass/setUpModule: no test of its own
            emit(
                self.progress,
                ev="done",
                test=str(test),
                outcome=what,
                loop="none",
                seconds=0,
                traceback="\n".join(self._traceback)[-3000:],
            )
            self._traceback = []
            return
        # a subtest's failure outlives the test's own success
        if self._outcome in ("fail", "error") and what == "pass":
            return
        self._outcome = what

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set(test, "fail", err)

    def addError(self, test, err):
        super().addError(test, err)
        self._set(test, "error", err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._set(test, "skip: " + " ".join(reason.split()))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set(test, "pass")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set(test, "fail")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._set(test, "fail" if failed else "error", err)


def emit(stream, **event):
    stream.write(json.dumps(event) + "\n")
    stream.flush()


def load_module(modname, mode):
    """The module's tests (with the adapted classes), or None if this
    version of CPython has no such module."""
    try:
        mod = importlib.import_module("test.test_asyncio." + modname)
    except ModuleNotFoundError as e:
        if e.name == "test.test_asyncio." + modname:
            return None
        raise
    for name, cls in adapted_classes(modname, mod, mode).items():
        setattr(mod, name, cls)
    return unittest.defaultTestLoader.loadTestsFromModule(mod)


def child_main(args):
    """Runs the modules in this process, writing events to args.child."""
    version = sys.version_info[:2]
    mode = Mode(args.loop)
    exclusions = [e for e in read_exclusions() if e.applies_to(version)]
    skip = set()
    if args.skip_file:
        with open(args.skip_file, encoding="utf-8") as f:
            skip = set(f.read().split())
    count_loops(mode)
    patch_test_utils(mode)
    with open(args.child, "a", encoding="utf-8") as progress:
        for modname in args.modules:
            suite = load_module(modname, mode)
            if suite is None:
                emit(progress, ev="module", module=modname, present=False)
                continue
            kept = unittest.TestSuite()
            excluded = {}
            for test in iter_tests(suite):
                tid = short_id(test)
                ex = find_exclusion(tid, exclusions)
                # the reference runs what is excluded as unbuilt or a bug
                if ex is not None and (
                    ex.kind() == "selector/proactor internals"
                    or (mode.our_class is not None and not args.run_excluded)
                ):
                    excluded.setdefault(ex.category, []).append(tid)
                elif tid not in skip:
                    kept.addTest(test)
            emit(
                progress,
                ev="module",
                module=modname,
                present=True,
                excluded=excluded,
            )
            runner = unittest.TextTestRunner(
                stream=sys.stderr,
                verbosity=args.verbose,
                resultclass=lambda *a, **k: Result(
                    *a, mode=mode, progress=progress, **k
                ),
            )
            runner.run(kept)
        emit(progress, ev="end")
    return 0


class ModuleReport:
    def __init__(self, name):
        self.name = name
        self.present = True
        self.excluded = {}
        self.outcome = {}
        self.loop = {}
        self.seconds = {}
        self.traceback = {}

    def add(self, ev):
        t = ev["test"]
        self.outcome[t] = ev["outcome"]
        self.loop[t] = ev["loop"]
        self.seconds[t] = ev["seconds"]
        if ev.get("traceback"):
            self.traceback[t] = ev["traceback"]

    def as_dict(self, exclusions, run_excluded):
        if not self.present:
            return {"module": self.name, "present": False}
        counts = {"pass": 0, "fail": 0, "error": 0, "skip": 0}
        for what in self.outcome.values():
            counts[what.split(":")[0]] += 1
        loops = list(self.loop.values())
        failed = sorted(
            t for t, w in self.outcome.items() if w in ("fail", "error")
        )
        out = {
            "module": self.name,
            "present": True,
            **counts,
            "on_our_loop": loops.count("ours"),
            "no_loop": loops.count("none"),
            "excluded": {k: len(v) for k, v in self.excluded.items()},
            "seconds": round(sum(self.seconds.values()), 2),
            "failed": failed,
            "tracebacks": {t: self.traceback.get(t, "") for t in failed},
            "skipped": sorted(
                f"{t}: {w[6:]}"
                for t, w in self.outcome.items()
                if w.startswith("skip")
            ),
            "slowest": [
                f"{s:.2f}s {t}"
                for s, t in sorted((s, t) for t, s in self.seconds.items())[
                    -3:
                ]
            ],
        }
        if run_excluded:
            out["excluded_passing"] = sorted(
                t
                for t, w in self.outcome.items()
                if w == "pass" and find_exclusion(t, exclusions)
            )
        return out


def run_children(args, workdir):
    """Runs the modules in child processes; a child that dies (a crash, or
    a test stopped after TEST_TIMEOUT) has its test reported as an error
    and the next child goes on after it."""
    reports = {m: ModuleReport(m) for m in args.modules}
    remaining = list(args.modules)
    skip = set()
    for attempt in range(50):
        progress = os.path.join(workdir, f"progress{attempt}.jsonl")
        errlog = os.path.join(workdir, f"stderr{attempt}.txt")
        skip_file = os.path.join(workdir, f"skip{attempt}.txt")
        with open(skip_file, "w", encoding="utf-8") as f:
            f.write("\n".join(sorted(skip)))
        cmd = [sys.executable, os.path.abspath(__file__), "--child", progress]
        cmd += ["--loop", args.loop, "--skip-file", skip_file]
        cmd += ["-v"] * args.verbose
        cmd += ["--run-excluded"] if args.run_excluded else []
        with open(errlog, "w", encoding="utf-8") as err:
            rc = subprocess.call(cmd + remaining, cwd=workdir, stderr=err)
        with open(errlog, encoding="utf-8", errors="replace") as f:
            stderr = f.read()
        sys.stderr.write(stderr)
        current, started, ended = None, None, False
        if os.path.exists(progress):
            with open(progress, encoding="utf-8") as f:
                for line in f:
                    ev = json.loads(line)
                    if ev["ev"] == "module":
                        current = reports[ev["module"]]
                        current.present = ev["present"]
                        current.excluded = ev.get("excluded", {})
                    elif ev["ev"] == "start":
                        started = ev["test"]
                    elif ev["ev"] == "done":
                        current.add(ev)
                        skip.add(ev["test"])
                        started = None
                    elif ev["ev"] == "end":
                        ended = True
        if ended:
            return reports
        if current is None:
            raise RuntimeError(
                f"the child ran no module (exit {rc}):\n{stderr}"
            )
        test = started or f"{current.name} (between tests)"
        current.add(
            {
                "test": test,
                "outcome": "error",
                "loop": "none",
                "seconds": TEST_TIMEOUT,
                "traceback": f"the process died (exit {rc}), stopped after "
                f"{TEST_TIMEOUT:.0f} s or crashed:\n{stderr[-2500:]}",
            }
        )
        skip.add(test)
        remaining = remaining[remaining.index(current.name) :]
    raise RuntimeError("too many crashed runs")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--loop", choices=("uvasync", "asyncio"), default="uvasync"
    )
    ap.add_argument("--json", help="write the per-module report here")
    ap.add_argument(
        "--run-excluded",
        action="store_true",
        help="also run the tests excluded as not built yet or bugs",
    )
    ap.add_argument("-v", "--verbose", action="count", default=0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--skip-file", help=argparse.SUPPRESS)
    ap.add_argument("modules", nargs="*", help="default: all of MODULES")
    args = ap.parse_args(argv)
    if args.child:
        return child_main(args)
    pyname = f"Python {sys.version.split()[0]} ({sys.executable})"
    try:
        importlib.import_module("test.test_asyncio.utils")
    except ImportError as e:
        print(f"NOT RUN: {pyname} has no test.test_asyncio ({e})")
        return 2
    args.modules = args.modules or MODULES
    for m in args.modules:
        if m not in MODULES:
            ap.error(f"{m} is not one of {MODULES}")
    version = sys.version_info[:2]
    exclusions = [e for e in read_exclusions() if e.applies_to(version)]
    started = time.monotonic()
    # the tests write their files (os_helper.TESTFN) into the current dir
    with tempfile.TemporaryDirectory(prefix="cpython_asyncio_") as workdir:
        reports = run_children(args, workdir)
    reports = [
        reports[m].as_dict(exclusions, args.run_excluded) for m in args.modules
    ]
    wall = time.monotonic() - started
    print_summary(pyname, args.loop, reports, wall)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "python": pyname,
                    "loop": args.loop,
                    "seconds": round(wall, 1),
                    "modules": reports,
                },
                f,
                indent=1,
            )
    bad = sum(r.get("fail", 0) + r.get("error", 0) for r in reports)
    return 1 if bad else 0


def _short_excluded(excluded):
    """{category: n} as "n internals, n not built, n bug"."""
    kinds = {}
    for category, n in excluded.items():
        kind = category.split(":")[0]
        kinds[kind] = kinds.get(kind, 0) + n
    names = {"selector/proactor internals": "internals"}
    return ", ".join(
        f"{n} {names.get(k, k)}" for k, n in sorted(kinds.items())
    )


def print_summary(pyname, loop, reports, wall):
    loop = (
        "uvasync.EventLoop" if loop == "uvasync" else "asyncio's default loop"
    )
    print(f"\nCPython's test_asyncio on {loop}, {pyname}, {wall:.0f} s")
    head = f"{'module':20} {'pass':>5} {'fail':>5} {'error':>5} {'skip':>5}"
    print(head + f" {'ours':>5} {'none':>5}  excluded  time")
    keys = ("pass", "fail", "error", "skip", "on_our_loop", "no_loop")
    total = dict.fromkeys(keys, 0)
    excl = {}
    for r in reports:
        if not r["present"]:
            print(f"{r['module']:20} not in this version of CPython")
            continue
        for k in total:
            total[k] += r[k]
        for k, v in r["excluded"].items():
            excl[k] = excl.get(k, 0) + v
        ex = _short_excluded(r["excluded"])
        print(
            f"{r['module']:20} {r['pass']:5} {r['fail']:5} {r['error']:5}"
            f" {r['skip']:5} {r['on_our_loop']:5} {r['no_loop']:5}"
            f"  {ex or '-'}  {r['seconds']:.1f}s"
        )
    ex = _short_excluded(excl)
    print(
        f"{'total':20} {total['pass']:5} {total['fail']:5} {total['error']:5}"
        f" {total['skip']:5} {total['on_our_loop']:5} {total['no_loop']:5}"
        f"  {ex or '-'}"
    )
    print(
        "(ours: tests that ran on the loop under test; none: tests that"
        " made no loop; excluded: see cpython_asyncio_exclusions.txt)"
    )
    for r in reports:
        for t in r.get("failed", []):
            print(f"FAILED {t}")
        for t in r.get("skipped", []):
            print(f"skipped by CPython's own condition: {t}")
        for t in r.get("excluded_passing", []):
            print(f"excluded but passes: {t}")


if __name__ == "__main__":
    sys.exit(main())
