'use strict';
// uvasync from Node.js through koffi: two timers, a sleeping task that gets
// cancelled, a TCP echo round trip on 127.0.0.1 and a child process whose
// output is read from a pipe, all driven by callbacks on one uvasync loop.
// Prints what happens; exits 1 on any mismatch.
//
//   node bindings/node/client.js     (UVASYNC_LIBRARY=... to pick a library)
//
// uva_loop_run blocks the JS thread until its work is done; the callbacks
// run synchronously inside it, on this thread.
const uva = require('./uvasync');

const { K, types, koffi } = uva;
const lib = uva.load();
let failures = 0;

function expect(ok, what) {
  console.log((ok ? 'ok    ' : 'FAIL  ') + what);
  if (!ok) failures++;
}

function check(rc, what) {
  if (rc !== 0) throw new Error(`${what} failed: ${lib.uva_err_name(rc)} (${rc})`);
}

console.log(`loaded ${lib.path}: uvasync ${lib.uva_version_string()} ` +
            `(0x${lib.uva_version().toString(16).padStart(6, '0')})`);
const loopOut = [null];
check(lib.uva_loop_new(loopOut), 'uva_loop_new');
const loop = loopOut[0];

// Every registered callback: koffi keeps a limited number of slots, and a
// slot must stay registered while the library may call it, so all are
// unregistered after uva_loop_close. A JS exception must not reach C (koffi
// would return 0 to it): catch it, count it, stop the loop.
const callbacks = [];
function callback(type, fn, onError) {
  const cb = koffi.register((...args) => {
    try {
      return fn(...args);
    } catch (err) {
      console.log(`error in callback: ${err.stack}`);
      failures++;
      lib.uva_loop_stop(loop);
      return onError;
    }
  }, type);
  callbacks.push(cb);
  return cb;
}

// Timers: "second" is started first but is due later. Handles are BigInts.
const timerNames = new Map();
const fired = [];
const sleeper = [null];

const onTimer = callback(types.uva_timer_cb, (timer, data) => {
  const name = timerNames.get(timer);
  console.log(`timer ${name} fired`);
  fired.push(name);
  if (name === 'first') {
    check(lib.uva_task_cancel(sleeper[0]), 'uva_task_cancel');
    console.log('timer first cancelled the sleeper');
  }
  check(lib.uva_timer_close(timer, null), 'uva_timer_close');
});

function startTimer(name, ms) {
  const out = [null];
  check(lib.uva_timer_new(out, loop, onTimer, null, null), 'uva_timer_new');
  timerNames.set(out[0], name);
  check(lib.uva_timer_start(out[0], ms, 0), 'uva_timer_start');
}
startTimer('second', 20);
startTimer('first', 10);

// A task that sleeps for 10 s; the timer "first" cancels it.
let sleeperStatus = null;
const sleeperStep = callback(types.uva_task_step_cb, (task, status, data) => {
  if (status === K.UVA_ECANCELED) {
    console.log('sleeper: cancelled while sleeping');
    sleeperStatus = status;
    return K.UVA_ECANCELED; // finish with that error as the result
  }
  console.log('sleeper: sleeping 10 s');
  check(lib.uva_task_sleep(task, 10000), 'uva_task_sleep');
  return K.UVA_TASK_PENDING;
}, K.UVA_EUSER);
check(lib.uva_task_spawn(sleeper, loop, sleeperStep, null, null), 'uva_task_spawn');

// Echo server on 127.0.0.1, port chosen by the system. Each connection gets
// a detached handler task whose data is the stream it serves.
const server = [null];
check(lib.uva_tcp_listen(server, loop, '127.0.0.1', 0, 0), 'uva_tcp_listen');
const port = [0];
check(lib.uva_server_address(server[0], null, 0, port), 'uva_server_address');
console.log(`server: listening on 127.0.0.1:${port[0]}`);

const BUFSIZE = 4096;
const handlers = new Map(); // stream -> { buf, n }

const handlerStep = callback(types.uva_task_step_cb, (task, status, stream) => {
  const h = handlers.get(stream);
  if (status === K.UVA_ECANCELED) {
    lib.uva_stream_abort(stream, null, null);
    return status;
  }
  for (;;) {
    // The call-again protocol: EAGAIN means "woken when there is data".
    const rc = lib.uva_stream_read(h.n, stream, task, h.buf, BUFSIZE);
    if (rc === K.UVA_EAGAIN) return K.UVA_TASK_PENDING;
    check(rc, 'server uva_stream_read');
    if (h.n[0] === 0) {
      console.log('server: end of stream, closing the connection');
      handlers.delete(stream);
      check(lib.uva_stream_close(stream, null, null), 'uva_stream_close');
      return 0;
    }
    check(lib.uva_stream_write(null, stream, h.buf, h.n[0]), 'uva_stream_write');
    console.log(`server: echoed ${h.n[0]} bytes`);
  }
}, K.UVA_EUSER);

const onConnection = callback(types.uva_server_connection_cb, (srv, stream, data) => {
  console.log('server: connection accepted');
  handlers.set(stream, { buf: Buffer.alloc(BUFSIZE), n: [0] });
  // out = NULL: a detached task; data (the stream) is borrowed, no destructor.
  check(lib.uva_task_spawn(null, loop, handlerStep, stream, null), 'uva_task_spawn');
});
check(lib.uva_server_on_connection(server[0], onConnection, null), 'uva_server_on_connection');

// Close callbacks: after them the handle's memory is gone.
const closed = new Set();
const onStreamClosed = callback(types.uva_stream_close_cb, (stream, data) => {
  console.log('client: stream closed');
  closed.add('stream');
});
const onServerClosed = callback(types.uva_server_close_cb, (srv, data) => {
  console.log('server: closed');
  closed.add('server');
});

// The client task: connect, send, half-close, read the echo to the end.
const MESSAGE = Buffer.from('hello uvasync');
const client = { state: 'connect', stream: [null], buf: Buffer.alloc(BUFSIZE), n: [0], received: [] };
const clientTask = [null];

const clientStep = callback(types.uva_task_step_cb, (task, status, data) => {
  const c = client;
  if (status === K.UVA_ECANCELED) return status;
  let rc;
  if (c.state === 'connect') {
    check(lib.uva_tcp_connect(c.stream, loop, '127.0.0.1', port[0]), 'uva_tcp_connect');
    c.state = 'connecting';
  }
  if (c.state === 'connecting') {
    rc = lib.uva_stream_wait_connected(c.stream[0], task);
    if (rc === K.UVA_EAGAIN) return K.UVA_TASK_PENDING;
    check(rc, 'uva_stream_wait_connected');
    console.log('client: connected');
    c.state = 'sending';
  }
  if (c.state === 'sending') {
    rc = lib.uva_stream_write_drain(c.stream[0], task, MESSAGE, MESSAGE.length);
    if (rc === K.UVA_EAGAIN) return K.UVA_TASK_PENDING;
    check(rc, 'uva_stream_write_drain');
    console.log(`client: sent ${JSON.stringify(MESSAGE.toString())}`);
    c.state = 'shutdown';
  }
  if (c.state === 'shutdown') {
    rc = lib.uva_stream_shutdown(c.stream[0], task);
    if (rc === K.UVA_EAGAIN) return K.UVA_TASK_PENDING;
    check(rc, 'uva_stream_shutdown');
    c.state = 'reading';
  }
  for (;;) {
    rc = lib.uva_stream_read(c.n, c.stream[0], task, c.buf, BUFSIZE);
    if (rc === K.UVA_EAGAIN) return K.UVA_TASK_PENDING;
    check(rc, 'client uva_stream_read');
    if (c.n[0] === 0) break;
    c.received.push(Buffer.from(c.buf.subarray(0, c.n[0])));
  }
  console.log(`client: received ${JSON.stringify(Buffer.concat(c.received).toString())}`);
  check(lib.uva_stream_close(c.stream[0], onStreamClosed, null), 'uva_stream_close');
  check(lib.uva_server_close(server[0], onServerClosed, null), 'uva_server_close');
  return 0;
}, K.UVA_EUSER);
check(lib.uva_task_spawn(clientTask, loop, clientStep, null, null), 'uva_task_spawn');

// A child process: `sh -c 'echo hello; exit 3'` with its stdout on a pipe,
// which is a stream of the loop; read it to the end, then wait for the exit.
const CHILD_SCRIPT = 'echo hello from the child; exit 3';
const child = {
  state: 'spawn', process: [null], stream: [null], buf: Buffer.alloc(BUFSIZE), n: [0],
  output: [], exitStatus: [-1], termSignal: [-1],
};
const childTask = [null];

const childStep = callback(types.uva_task_step_cb, (task, status, data) => {
  const c = child;
  if (status === K.UVA_ECANCELED) return status;
  let rc;
  if (c.state === 'spawn') {
    // koffi turns the object into a uva_process_options_t (layout from the
    // cdef) and the argv array into a NULL-terminated char ** for the
    // call; the library reads them during the call only.
    const options = {
      size: koffi.sizeof(types.uva_process_options_t),
      file: null,
      args: ['/bin/sh', '-c', CHILD_SCRIPT, null],
      env: null,
      cwd: null,
      stdio: [
        { kind: K.UVA_STDIO_NULL, fd: 0 },
        { kind: K.UVA_STDIO_PIPE, fd: 0 },
        { kind: K.UVA_STDIO_INHERIT, fd: 0 },
      ],
      flags: 0,
    };
    check(lib.uva_process_spawn(c.process, loop, options), 'uva_process_spawn');
    const pid = [0];
    check(lib.uva_process_pid(pid, c.process[0]), 'uva_process_pid');
    console.log(`child: started /bin/sh, pid ${pid[0]}`);
    // Our end of its stdout, now owned here (closed below).
    check(lib.uva_process_stream(c.stream, c.process[0], 1), 'uva_process_stream');
    c.state = 'reading';
  }
  if (c.state === 'reading') {
    for (;;) {
      rc = lib.uva_stream_read(c.n, c.stream[0], task, c.buf, BUFSIZE);
      if (rc === K.UVA_EAGAIN) return K.UVA_TASK_PENDING;
      check(rc, 'child uva_stream_read');
      if (c.n[0] === 0) break;
      c.output.push(Buffer.from(c.buf.subarray(0, c.n[0])));
    }
    console.log(`child: output ${JSON.stringify(Buffer.concat(c.output).toString())}`);
    check(lib.uva_stream_close(c.stream[0], null, null), 'uva_stream_close');
    c.state = 'waiting';
  }
  rc = lib.uva_process_wait(c.exitStatus, c.termSignal, c.process[0], task);
  if (rc === K.UVA_EAGAIN) return K.UVA_TASK_PENDING;
  check(rc, 'uva_process_wait');
  console.log(`child: exited with status ${c.exitStatus[0]}, signal ${c.termSignal[0]}`);
  check(lib.uva_process_close(c.process[0], null, null), 'uva_process_close');
  return 0;
}, K.UVA_EUSER);
check(lib.uva_task_spawn(childTask, loop, childStep, null, null), 'uva_task_spawn');

// Run until no work is left: timers fired, tasks finished, server closed.
check(lib.uva_loop_run(loop, K.UVA_RUN_DEFAULT), 'uva_loop_run');

const result = [0];
expect(fired.join(',') === 'first,second', `timers fired in order: ${fired.join(', ')}`);
check(lib.uva_task_result(result, sleeper[0]), 'uva_task_result');
expect(sleeperStatus === K.UVA_ECANCELED && result[0] === K.UVA_ECANCELED,
       `sleeper cancelled, result ${lib.uva_err_name(result[0])}`);
check(lib.uva_task_result(result, clientTask[0]), 'uva_task_result');
expect(result[0] === 0, 'client task finished with 0');
expect(Buffer.concat(client.received).equals(MESSAGE), 'echo round trip returned the message');
expect(closed.has('stream') && closed.has('server'), 'close callbacks ran');
check(lib.uva_task_result(result, childTask[0]), 'uva_task_result');
expect(result[0] === 0, 'child task finished with 0');
expect(Buffer.concat(child.output).toString() === 'hello from the child\n',
       "child's stdout read through the pipe stream");
expect(Number(child.exitStatus[0]) === 3 && child.termSignal[0] === 0,
       "child's exit status 3 and no signal");

// Drop our task references, let the loop reap them, then close it. Only
// then is no callback reachable from C, and the slots can be unregistered.
check(lib.uva_task_release(sleeper[0]), 'uva_task_release');
check(lib.uva_task_release(clientTask[0]), 'uva_task_release');
check(lib.uva_task_release(childTask[0]), 'uva_task_release');
check(lib.uva_loop_run(loop, K.UVA_RUN_DEFAULT), 'uva_loop_run');
const rc = lib.uva_loop_close(loop);
expect(rc === 0, `uva_loop_close returned ${rc}`);
for (const cb of callbacks) koffi.unregister(cb);

if (failures > 0) {
  console.log(`node client: ${failures} check(s) FAILED`);
  process.exit(1);
}
console.log('node client: all checks passed');
