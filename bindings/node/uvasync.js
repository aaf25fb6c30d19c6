'use strict';
// Load libuvasync in Node.js through koffi (no compile step). The
// prototypes come from the generated bindings/uvasync.cdef.h, one declaration
// per line, so this module keeps no copy of the API.
//
//   const uva = require('./uvasync');
//   const lib = uva.load();   // $UVASYNC_LIBRARY, else build/libuvasync.so
//   lib.uva_loop_new(out)     // out = [null]: outputs come back in arrays
//   uva.K.UVA_EAGAIN, uva.types.uva_task_step_cb
//
// koffi 3 represents pointers as BigInt: handles are BigInts here.
const fs = require('fs');
const path = require('path');
const koffi = require('koffi');

const CDEF = path.join(__dirname, '..', 'uvasync.cdef.h');
const DEFAULT_LIBRARY = path.join(__dirname, '..', '..', 'build', 'libuvasync.so');

// The version this module was written against: 1.0.0 as UVA_VERSION_HEX
// (0xMMmmpp). Same major version and at least this one is accepted.
const EXPECTED_VERSION = 0x010000;

const cdef = fs.readFileSync(CDEF, 'utf8');
const K = {};      // UVA_* enum values
const types = {};  // callback prototypes by typedef name
const functions = [];

for (const m of cdef.matchAll(/enum \{([^}]*)\}/g)) {
  for (const e of m[1].matchAll(/(\w+) = (-?\d+)/g)) K[e[1]] = Number(e[2]);
}
for (const m of cdef.matchAll(/^typedef enum \{[^}]*\} (\w+);/gm)) koffi.alias(m[1], 'int');
for (const line of cdef.split('\n')) {
  let m;
  if ((m = line.match(/^typedef struct \w+ (\w+);$/))) {
    koffi.opaque(m[1]);
  } else if ((m = line.match(/^typedef struct(?: \w+)? ?\{(.*)\} ?(\w+);$/))) {
    // A struct with a layout (uva_buf_t, uva_process_options_t): its
    // members, "<type> <name>;", "<type> <name>[N];" (an array) or
    // "<type> <a>, <b>;" (several of one type).
    const fields = {};
    for (const f of m[1].split(';').map((x) => x.trim()).filter(Boolean)) {
      const fm = f.match(/^(.*?[\s*])(\w+(?:\[\d+\])?(?:, \w+(?:\[\d+\])?)*)$/);
      for (const name of fm[2].split(', ')) {
        const am = name.match(/^(\w+)\[(\d+)\]$/);
        if (am) fields[am[1]] = koffi.array(fm[1].trim(), Number(am[2]));
        else fields[name] = fm[1].trim();
      }
    }
    types[m[2]] = koffi.struct(m[2], fields);
  } else if ((m = line.match(/^typedef (.+?) \(\*(\w+)\)\((.*)\);$/))) {
    // The C typedef is a function pointer: name the pointer type after it.
    const fn = koffi.proto(`${m[1]} ${m[2]}__fn(${m[3]})`);
    types[m[2]] = koffi.pointer(m[2], fn);
  } else if ((m = line.match(/^(.+?)\b(uva_\w+)\((.*)\);$/))) {
    functions.push([m[2], `${m[1]}${m[2]}(${markOutputs(m[3])})`]);
  }
}

// koffi copies a pointer argument back to JS only when it is marked _Out_:
// mark every non-const pointer to a number and every pointer to a pointer
// (uva_loop_t **out, int *port, size_t *nread, const void **data).
function markOutputs(params) {
  if (params === 'void') return params;
  return params.split(', ').map((p) => {
    const scalarOut = /^(int|long|size_t|int64_t|uint64_t) \*\w+$/.test(p);
    const pointerOut = /\*\*\w+$/.test(p);
    return scalarOut || pointerOut ? `_Out_ ${p}` : p;
  }).join(', ');
}

function load(libraryPath) {
  const where = libraryPath || process.env.UVASYNC_LIBRARY || DEFAULT_LIBRARY;
  const handle = koffi.load(where);
  const lib = { path: where };
  for (const [name, prototype] of functions) lib[name] = handle.func(prototype);
  const version = lib.uva_version();
  if (version >> 16 !== EXPECTED_VERSION >> 16 || version < EXPECTED_VERSION) {
    throw new Error(`uvasync: ${where} is version 0x${version.toString(16)}, ` +
                    `expected 0x${EXPECTED_VERSION.toString(16)}`);
  }
  return lib;
}

module.exports = { load, K, types, koffi, EXPECTED_VERSION };
