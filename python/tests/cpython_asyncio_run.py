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
    """Installs the loop before each test, counts the loops a test made and
    turns a pass on one of asyncio's loops into an error (uvasync mode)."""

    def __init__(self, *args, mode, **kwargs):
        super().__init__(*args, **kwargs)
        self.mode = mode
        self.outcome = {}
        self.on_ours = 0
        self.no_loop = 0
        self.durations = []
        self._started = 0.0

    def startTest(self, test):
        self.mode.install()
        LOOPS.reset()
        self._started = time.monotonic()
        faulthandler.dump_traceback_later(TEST_TIMEOUT, exit=True)
        super().startTest(test)

    def stopTest(self, test):
        faulthandler.cancel_dump_traceback_later()
        self.durations.append(
            (time.monotonic() - self._started, short_id(test))
        )
        tid = short_id(test)
        if LOOPS.theirs:
            if self.outcome.get(tid) in ("pass", None):
                self.outcome[tid] = "error"
                msg = (
                    f"ran on asyncio's {', '.join(sorted(set(LOOPS.theirs)))}"
                )
                self.errors.append(
                    (test, msg + ", not on the loop under test\n")
                )
        if LOOPS.ours:
            self.on_ours += 1
        elif not LOOPS.theirs:
            self.no_loop += 1
        super().stopTest(test)

    def _set(self, test, what):
        tid = short_id(test)
        # a subtest's failure outlives the test's own success
        if self.outcome.get(tid) in ("fail", "error") and what == "pass":
            return
        self.outcome[tid] = what

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set(test, "fail")

    def addError(self, test, err):
        super().addError(test, err)
        if isinstance(test, unittest.TestCase):
            self._set(test, "error")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if isinstance(test, unittest.TestCase):
            self._set(test, "skip: " + reason)

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
            self._set(test, "fail" if failed else "error")


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


def run_module(modname, mode, exclusions, run_excluded, verbosity):
    """Runs one module; returns its report (a dict)."""
    suite = load_module(modname, mode)
    report = {"module": modname, "present": suite is not None}
    if suite is None:
        return report
    kept = unittest.TestSuite()
    excluded = {}
    for test in iter_tests(suite):
        tid = short_id(test)
        ex = find_exclusion(tid, exclusions)
        # the baseline runs what is excluded for being unbuilt or a bug
        skip = ex is not None and (
            ex.kind() == "selector/proactor internals"
            or (mode.name == "uvasync" and not run_excluded)
        )
        if ex is not None:
            ex.used += 1
        if skip:
            excluded.setdefault(ex.category, []).append(tid)
        else:
            kept.addTest(test)
    runner = unittest.TextTestRunner(
        stream=sys.stderr,
        verbosity=verbosity,
        resultclass=lambda *a, **k: Result(*a, mode=mode, **k),
    )
    started = time.monotonic()
    result = runner.run(kept)
    report["seconds"] = round(time.monotonic() - started, 2)
    outcome = result.outcome
    # a failure in setUpClass/setUpModule reaches no test's own outcome
    for test, _ in result.errors:
        if (
            not isinstance(test, unittest.TestCase)
            or short_id(test) not in outcome
        ):
            outcome[getattr(test, "description", str(test))] = "error"
    counts = {"pass": 0, "fail": 0, "error": 0, "skip": 0}
    for what in outcome.values():
        counts[what.split(":")[0]] += 1
    report.update(counts)
    report["on_our_loop"] = result.on_ours
    report["no_loop"] = result.no_loop
    report["excluded"] = {k: len(v) for k, v in excluded.items()}
    report["failed"] = sorted(
        t for t, w in outcome.items() if w in ("fail", "error")
    )
    report["tracebacks"] = {
        getattr(test, "description", None) or short_id(test): text[-2000:]
        for test, text in result.errors + result.failures
    }
    report["skipped"] = sorted(
        f"{t}: {' '.join(w[6:].split())[:70]}"
        for t, w in outcome.items()
        if w[:4] == "skip"
    )
    if run_excluded:
        report["excluded_passing"] = sorted(
            t
            for t, w in outcome.items()
            if w == "pass" and find_exclusion(t, exclusions)
        )
    report["slowest"] = [
        f"{s:.2f}s {t}" for s, t in sorted(result.durations)[-3:]
    ]
    return report


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
    ap.add_argument("modules", nargs="*", help="default: all of MODULES")
    args = ap.parse_args(argv)
    version = sys.version_info[:2]
    pyname = f"Python {sys.version.split()[0]} ({sys.executable})"
    try:
        importlib.import_module("test.test_asyncio.utils")
    except ImportError as e:
        print(f"NOT RUN: {pyname} has no test.test_asyncio ({e})")
        return 2
    modules = args.modules or MODULES
    for m in modules:
        if m not in MODULES:
            ap.error(f"{m} is not one of {MODULES}")
    mode = Mode(args.loop)
    exclusions = [e for e in read_exclusions() if e.applies_to(version)]
    count_loops(mode)
    patch_test_utils(mode)
    reports = []
    # the tests write their files (os_helper.TESTFN) into the current dir
    with tempfile.TemporaryDirectory(prefix="cpython_asyncio_") as cwd:
        old = os.getcwd()
        os.chdir(cwd)
        try:
            for m in modules:
                reports.append(
                    run_module(
                        m, mode, exclusions, args.run_excluded, args.verbose
                    )
                )
        finally:
            os.chdir(old)
    print_summary(pyname, mode, reports)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {"python": pyname, "loop": mode.name, "modules": reports},
                f,
                indent=1,
            )
    bad = sum(r.get("fail", 0) + r.get("error", 0) for r in reports)
    return 1 if bad else 0


def print_summary(pyname, mode, reports):
    loop = "uvasync.EventLoop" if mode.our_class else "asyncio's default loop"
    print(f"\nCPython's test_asyncio on {loop}, {pyname}")
    head = f"{'module':20} {'pass':>5} {'fail':>5} {'error':>5} {'skip':>5}"
    print(head + f" {'ours':>5} {'none':>5}  excluded (by category)   time")
    total = {
        "pass": 0,
        "fail": 0,
        "error": 0,
        "skip": 0,
        "on_our_loop": 0,
        "no_loop": 0,
    }
    excl = {}
    for r in reports:
        if not r["present"]:
            print(f"{r['module']:20} not in this version of CPython")
            continue
        for k in total:
            total[k] += r[k]
        for k, v in r["excluded"].items():
            excl[k] = excl.get(k, 0) + v
        ex = (
            ", ".join(f"{v} {k}" for k, v in sorted(r["excluded"].items()))
            or "-"
        )
        print(
            f"{r['module']:20} {r['pass']:5} {r['fail']:5} {r['error']:5} {r['skip']:5}"
            f" {r['on_our_loop']:5} {r['no_loop']:5}  {ex}  {r['seconds']}s"
        )
    ex = ", ".join(f"{v} {k}" for k, v in sorted(excl.items())) or "-"
    print(
        f"{'total':20} {total['pass']:5} {total['fail']:5} {total['error']:5}"
        f" {total['skip']:5} {total['on_our_loop']:5} {total['no_loop']:5}  {ex}"
    )
    for r in reports:
        for t in r.get("failed", []):
            print(f"FAILED {r['module']}: {t}")
        for t in r.get("skipped", []):
            print(f"skipped by CPython's own condition: {t}")
        for t in r.get("excluded_passing", []):
            print(f"excluded but passes: {t}")


if __name__ == "__main__":
    sys.exit(main())
