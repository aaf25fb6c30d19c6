-- uvasync from LuaJIT: two timers, a sleeping task that gets cancelled, a
-- TCP echo round trip on 127.0.0.1 and a child process whose output is read
-- from a pipe, all driven by callbacks on one loop. Prints what happens;
-- exits 1 on any mismatch.
--
--   luajit bindings/luajit/client.lua     (UVASYNC_LIBRARY=... to pick a library)
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path

local ffi = require("ffi")
local uva = require("uvasync")
local C, check, key = uva.C, uva.check, uva.key

local failures = 0
local function expect(ok, what)
  print((ok and "ok    " or "FAIL  ") .. what)
  if not ok then failures = failures + 1 end
end

print(string.format("loaded %s: uvasync %s (0x%06x)", uva.library_path,
                    uva.version_string, uva.version))

local loop_out = ffi.new("uva_loop_t *[1]")
check(C.uva_loop_new(loop_out), "uva_loop_new")
local loop = loop_out[0]

-- Every C callback made from a Lua function. They must stay alive while the
-- library may call them, and are freed after uva_loop_close (LuaJIT has a
-- limited number of callback slots and never frees them by itself).
local callbacks = {}
-- An error must not unwind through C: catch it, count it, stop the loop.
local function callback(ctype, fn, on_error)
  local cb = ffi.cast(ctype, function(...)
    local ok, result = pcall(fn, ...)
    if ok then return result end
    print("error in callback: " .. tostring(result))
    failures = failures + 1
    C.uva_loop_stop(loop)
    return on_error
  end)
  callbacks[#callbacks + 1] = cb
  return cb
end

-- Timers: "second" is started first but is due later.
local timer_names, fired = {}, {}
local sleeper = ffi.new("uva_task_t *[1]")

local on_timer = callback("uva_timer_cb", function(timer, data)
  local name = timer_names[key(timer)]
  print("timer " .. name .. " fired")
  fired[#fired + 1] = name
  if name == "first" then
    check(C.uva_task_cancel(sleeper[0]), "uva_task_cancel")
    print("timer first cancelled the sleeper")
  end
  check(C.uva_timer_close(timer, nil), "uva_timer_close")
end)

local function start_timer(name, ms)
  local out = ffi.new("uva_timer_t *[1]")
  check(C.uva_timer_new(out, loop, on_timer, nil, nil), "uva_timer_new")
  timer_names[key(out[0])] = name
  check(C.uva_timer_start(out[0], ms, 0), "uva_timer_start")
end
start_timer("second", 20)
start_timer("first", 10)

-- A task that sleeps for 10 s; the timer "first" cancels it.
local sleeper_status
local sleeper_step = callback("uva_task_step_cb", function(task, status, data)
  if status == C.UVA_ECANCELED then
    print("sleeper: cancelled while sleeping")
    sleeper_status = status
    return C.UVA_ECANCELED -- finish with that error as the result
  end
  print("sleeper: sleeping 10 s")
  check(C.uva_task_sleep(task, 10000), "uva_task_sleep")
  return C.UVA_TASK_PENDING
end, C.UVA_EUSER)
check(C.uva_task_spawn(sleeper, loop, sleeper_step, nil, nil), "uva_task_spawn")

-- Echo server on 127.0.0.1, port chosen by the system. Each connection gets
-- a detached handler task whose data is the stream it serves.
local server = ffi.new("uva_server_t *[1]")
check(C.uva_tcp_listen(server, loop, "127.0.0.1", 0, 0), "uva_tcp_listen")
local port = ffi.new("int[1]")
check(C.uva_server_address(server[0], nil, 0, port), "uva_server_address")
print("server: listening on 127.0.0.1:" .. port[0])

local BUFSIZE = 4096
local handlers = {} -- stream key -> { buf, n }

local handler_step = callback("uva_task_step_cb", function(task, status, data)
  local stream = ffi.cast("uva_stream_t *", data)
  local h = handlers[key(stream)]
  if status == C.UVA_ECANCELED then
    C.uva_stream_abort(stream, nil, nil)
    return status
  end
  while true do
    -- The call-again protocol: EAGAIN means "woken when there is data".
    local rc = C.uva_stream_read(h.n, stream, task, h.buf, BUFSIZE)
    if rc == C.UVA_EAGAIN then return C.UVA_TASK_PENDING end
    check(rc, "server uva_stream_read")
    if h.n[0] == 0 then
      print("server: end of stream, closing the connection")
      handlers[key(stream)] = nil
      check(C.uva_stream_close(stream, nil, nil), "uva_stream_close")
      return 0
    end
    check(C.uva_stream_write(nil, stream, h.buf, h.n[0]), "uva_stream_write")
    print(string.format("server: echoed %d bytes", tonumber(h.n[0])))
  end
end, C.UVA_EUSER)

local on_connection = callback("uva_server_connection_cb", function(srv, stream, data)
  print("server: connection accepted")
  handlers[key(stream)] = { buf = ffi.new("char[?]", BUFSIZE), n = ffi.new("size_t[1]") }
  -- out = NULL: a detached task; data (the stream) is borrowed, no destructor.
  check(C.uva_task_spawn(nil, loop, handler_step, stream, nil), "uva_task_spawn")
end)
check(C.uva_server_on_connection(server[0], on_connection, nil), "uva_server_on_connection")

-- Close callbacks: after them the handle's memory is gone.
local closed = {}
local on_stream_closed = callback("uva_stream_close_cb", function(stream, data)
  print("client: stream closed")
  closed.stream = true
end)
local on_server_closed = callback("uva_server_close_cb", function(srv, data)
  print("server: closed")
  closed.server = true
end)

-- The client task: connect, send, half-close, read the echo to the end.
local MESSAGE = "hello uvasync"
local client = { state = "connect", stream = ffi.new("uva_stream_t *[1]"),
                 buf = ffi.new("char[?]", BUFSIZE), n = ffi.new("size_t[1]"),
                 received = {} }
local client_task = ffi.new("uva_task_t *[1]")

local client_step = callback("uva_task_step_cb", function(task, status, data)
  local c = client
  if status == C.UVA_ECANCELED then return status end
  local rc
  if c.state == "connect" then
    check(C.uva_tcp_connect(c.stream, loop, "127.0.0.1", port[0]), "uva_tcp_connect")
    c.state = "connecting"
  end
  if c.state == "connecting" then
    rc = C.uva_stream_wait_connected(c.stream[0], task)
    if rc == C.UVA_EAGAIN then return C.UVA_TASK_PENDING end
    check(rc, "uva_stream_wait_connected")
    print("client: connected")
    c.state = "sending"
  end
  if c.state == "sending" then
    rc = C.uva_stream_write_drain(c.stream[0], task, MESSAGE, #MESSAGE)
    if rc == C.UVA_EAGAIN then return C.UVA_TASK_PENDING end
    check(rc, "uva_stream_write_drain")
    print(string.format("client: sent %q", MESSAGE))
    c.state = "shutdown"
  end
  if c.state == "shutdown" then
    rc = C.uva_stream_shutdown(c.stream[0], task)
    if rc == C.UVA_EAGAIN then return C.UVA_TASK_PENDING end
    check(rc, "uva_stream_shutdown")
    c.state = "reading"
  end
  while true do
    rc = C.uva_stream_read(c.n, c.stream[0], task, c.buf, BUFSIZE)
    if rc == C.UVA_EAGAIN then return C.UVA_TASK_PENDING end
    check(rc, "client uva_stream_read")
    if c.n[0] == 0 then break end
    c.received[#c.received + 1] = ffi.string(c.buf, c.n[0])
  end
  print(string.format("client: received %q", table.concat(c.received)))
  check(C.uva_stream_close(c.stream[0], on_stream_closed, nil), "uva_stream_close")
  check(C.uva_server_close(server[0], on_server_closed, nil), "uva_server_close")
  return 0
end, C.UVA_EUSER)
check(C.uva_task_spawn(client_task, loop, client_step, nil, nil), "uva_task_spawn")

-- A child process: `sh -c 'echo hello; exit 3'` with its stdout on a pipe,
-- which is a stream of the loop; read it to the end, then wait for the exit.
local CHILD_SCRIPT = "echo hello from the child; exit 3"
local child = { state = "spawn", process = ffi.new("uva_process_t *[1]"),
                stream = ffi.new("uva_stream_t *[1]"),
                buf = ffi.new("char[?]", BUFSIZE), n = ffi.new("size_t[1]"),
                output = {}, exit_status = ffi.new("int64_t[1]", -1),
                term_signal = ffi.new("int[1]", -1) }
local child_task = ffi.new("uva_task_t *[1]")

local child_step = callback("uva_task_step_cb", function(task, status, data)
  local c = child
  if status == C.UVA_ECANCELED then return status end
  local rc
  if c.state == "spawn" then
    -- The option struct from the cdef; every pointer in it is read during
    -- the call only (the Lua strings and argv live until it returns).
    local argv = ffi.new("const char *[4]", "/bin/sh", "-c", CHILD_SCRIPT, nil)
    local opts = ffi.new("uva_process_options_t")
    opts.size = ffi.sizeof("uva_process_options_t")
    opts.args = argv
    opts.stdio[0].kind = C.UVA_STDIO_NULL
    opts.stdio[1].kind = C.UVA_STDIO_PIPE
    opts.stdio[2].kind = C.UVA_STDIO_INHERIT
    check(C.uva_process_spawn(c.process, loop, opts), "uva_process_spawn")
    local pid = ffi.new("int[1]")
    check(C.uva_process_pid(pid, c.process[0]), "uva_process_pid")
    print("child: started /bin/sh, pid " .. pid[0])
    -- Our end of its stdout, now owned here (closed below).
    check(C.uva_process_stream(c.stream, c.process[0], 1), "uva_process_stream")
    c.state = "reading"
  end
  if c.state == "reading" then
    while true do
      rc = C.uva_stream_read(c.n, c.stream[0], task, c.buf, BUFSIZE)
      if rc == C.UVA_EAGAIN then return C.UVA_TASK_PENDING end
      check(rc, "child uva_stream_read")
      if c.n[0] == 0 then break end
      c.output[#c.output + 1] = ffi.string(c.buf, c.n[0])
    end
    print(string.format("child: output %q", table.concat(c.output)))
    check(C.uva_stream_close(c.stream[0], nil, nil), "uva_stream_close")
    c.state = "waiting"
  end
  rc = C.uva_process_wait(c.exit_status, c.term_signal, c.process[0], task)
  if rc == C.UVA_EAGAIN then return C.UVA_TASK_PENDING end
  check(rc, "uva_process_wait")
  print(string.format("child: exited with status %d, signal %d",
                      tonumber(c.exit_status[0]), c.term_signal[0]))
  check(C.uva_process_close(c.process[0], nil, nil), "uva_process_close")
  return 0
end, C.UVA_EUSER)
check(C.uva_task_spawn(child_task, loop, child_step, nil, nil), "uva_task_spawn")

-- Run until no work is left: timers fired, tasks finished, server closed.
check(C.uva_loop_run(loop, C.UVA_RUN_DEFAULT), "uva_loop_run")

local result = ffi.new("int[1]")
expect(fired[1] == "first" and fired[2] == "second" and #fired == 2,
       "timers fired in order: " .. table.concat(fired, ", "))
check(C.uva_task_result(result, sleeper[0]), "uva_task_result")
expect(sleeper_status == C.UVA_ECANCELED and result[0] == C.UVA_ECANCELED,
       "sleeper cancelled, result " .. ffi.string(C.uva_err_name(result[0])))
check(C.uva_task_result(result, client_task[0]), "uva_task_result")
expect(result[0] == 0, "client task finished with 0")
expect(table.concat(client.received) == MESSAGE, "echo round trip returned the message")
expect(closed.stream and closed.server, "close callbacks ran")
check(C.uva_task_result(result, child_task[0]), "uva_task_result")
expect(result[0] == 0, "child task finished with 0")
expect(table.concat(child.output) == "hello from the child\n",
       "child's stdout read through the pipe stream")
expect(child.exit_status[0] == 3 and child.term_signal[0] == 0,
       "child's exit status 3 and no signal")

-- Drop our task references, let the loop reap them, then close it. Only
-- then is no callback reachable from C, and the callbacks can be freed.
check(C.uva_task_release(sleeper[0]), "uva_task_release")
check(C.uva_task_release(client_task[0]), "uva_task_release")
check(C.uva_task_release(child_task[0]), "uva_task_release")
check(C.uva_loop_run(loop, C.UVA_RUN_DEFAULT), "uva_loop_run")
local rc = C.uva_loop_close(loop)
expect(rc == 0, "uva_loop_close returned " .. rc)
for _, cb in ipairs(callbacks) do cb:free() end

if failures > 0 then
  print(string.format("luajit client: %d check(s) FAILED", failures))
  os.exit(1)
end
print("luajit client: all checks passed")
