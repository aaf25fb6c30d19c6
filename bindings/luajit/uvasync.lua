-- Load libuvasync through LuaJIT's FFI: the declarations come from the
-- generated bindings/uvasync.cdef.h, the library from $UVASYNC_LIBRARY or
-- build/libuvasync.so of this repository. No compile step.
--
--   local uva = require("uvasync")   -- uva.C is the library namespace
local ffi = require("ffi")

local M = {}

-- The version this module was written against: 1.0.0 as UVA_VERSION_HEX
-- (0xMMmmpp). A library of the same major version and at least this
-- version is accepted (within a major version the ABI only grows).
M.EXPECTED_VERSION = 0x010000

local here = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
local function read_file(path)
  local f = assert(io.open(path, "r"))
  local text = f:read("*a")
  f:close()
  return text
end

ffi.cdef(read_file(here .. "../uvasync.cdef.h"))
M.library_path = os.getenv("UVASYNC_LIBRARY")
if not M.library_path or M.library_path == "" then
  M.library_path = here .. "../../build/libuvasync.so"
end
M.C = ffi.load(M.library_path)

local version = M.C.uva_version()
if bit.rshift(version, 16) ~= bit.rshift(M.EXPECTED_VERSION, 16)
    or version < M.EXPECTED_VERSION then
  error(string.format("uvasync: %s is version 0x%06x, expected 0x%06x",
                      M.library_path, version, M.EXPECTED_VERSION))
end
M.version = version
M.version_string = ffi.string(M.C.uva_version_string())

-- Raise a Lua error for a negative result, with the code's name.
function M.check(rc, what)
  if rc ~= 0 then
    error(string.format("%s failed: %s (%d)", what,
                        ffi.string(M.C.uva_err_name(rc)), rc), 2)
  end
  return rc
end

-- A pointer as a number, to key Lua tables by handle.
function M.key(ptr)
  return tonumber(ffi.cast("uintptr_t", ptr))
end

return M
