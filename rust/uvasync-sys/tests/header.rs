//! The Rust declarations must match `include/uvasync.h`: every `UVA_EXTERN`
//! function, callback typedef, enum value and numeric `#define` of the header
//! is declared in `src/lib.rs` with the same name and the same C types
//! (mapped as below), and nothing else is. Error codes are checked against the
//! linked library itself (`uva_err_name` of each value names the constant).
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::path::PathBuf;

fn header_text() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // The repository's header first, as build.rs builds from it; a packaged
    // crate has only its vendor/ (the header's copy).
    for candidate in ["../../include/uvasync.h", "vendor/include/uvasync.h"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(candidate)) {
            return text;
        }
    }
    panic!("include/uvasync.h not found next to the crate");
}

fn lib_text() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap()
}

fn strip_c_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("*/").expect("unterminated comment");
        rest = &rest[i + end + 2..];
    }
    out.push_str(rest);
    out
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A C type (`const char *`, `uva_loop_t **`, `size_t`) as its Rust spelling.
fn rust_type(c: &str) -> String {
    // An array of strings the callee only reads (uva_tls_ctx_set_alpn).
    if squash(&c.replace('*', " * ")) == "const char * const *" {
        return "*const *const c_char".into();
    }
    let stars = c.matches('*').count();
    let base = squash(&c.replace('*', " "));
    let is_const = base.starts_with("const ");
    let base = base.trim_start_matches("const ").to_string();
    let mapped = match base.as_str() {
        "int" => "c_int",
        "unsigned int" => "c_uint",
        "long" => "c_long",
        "size_t" => "usize",
        "int64_t" => "i64",
        "uint64_t" => "u64",
        "void" => "c_void",
        "char" => "c_char",
        other => other,
    }
    .to_string();
    if stars == 0 {
        return if mapped == "c_void" { "()".into() } else { mapped };
    }
    let mut t = format!("{}{}", if is_const { "*const " } else { "*mut " }, mapped);
    for _ in 1..stars {
        t = format!("*mut {t}");
    }
    t
}

/// "int *out, uva_loop_t *loop" -> ["*mut c_int", "*mut uva_loop_t"].
fn c_params(params: &str) -> Vec<String> {
    let params = squash(params);
    if params == "void" || params.is_empty() {
        return vec![];
    }
    params
        .split(',')
        .map(|p| {
            let p = p.trim();
            let name_start = p.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap() + 1;
            rust_type(&p[..name_start])
        })
        .collect()
}

/// "loop_: *mut uva_loop_t, mode: uva_run_mode" -> types.
fn rust_params(params: &str) -> Vec<String> {
    let params = squash(params);
    if params.is_empty() {
        return vec![];
    }
    params
        .split(',')
        .filter(|p| !p.trim().is_empty()) // a trailing comma
        .map(|p| squash(p.split_once(':').expect("name: type").1))
        .collect()
}

type Sig = (Vec<String>, String);

/// Finds `<before> name ( params ) <after>;` items; returns name -> text.
fn c_functions(h: &str) -> BTreeMap<String, Sig> {
    let mut out = BTreeMap::new();
    for chunk in h.split("UVA_EXTERN").skip(1) {
        let Some(end) = chunk.find(';') else { continue };
        let decl = &chunk[..end];
        if decl.contains('#') || !decl.contains('(') {
            continue; // the macro's own definition
        }
        let open = decl.find('(').unwrap();
        let head = decl[..open].trim();
        let name_at = head.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap() + 1;
        let (ret, name) = (&head[..name_at], &head[name_at..]);
        let params = &decl[open + 1..decl.rfind(')').unwrap()];
        let ret = rust_type(ret);
        out.insert(name.to_string(), (c_params(params), ret));
    }
    out
}

fn c_callbacks(h: &str) -> BTreeMap<String, Sig> {
    let mut out = BTreeMap::new();
    for chunk in h.split("typedef ").skip(1) {
        let decl = &chunk[..chunk.find(';').unwrap()];
        let Some(star) = decl.find("(*") else { continue };
        let ret = rust_type(&decl[..star]);
        let name_end = decl[star..].find(')').unwrap() + star;
        let name = decl[star + 2..name_end].trim();
        let params = &decl[name_end + 1..];
        let params = &params[params.find('(').unwrap() + 1..params.rfind(')').unwrap()];
        out.insert(name.to_string(), (c_params(params), ret));
    }
    out
}

fn rust_functions(lib: &str) -> BTreeMap<String, Sig> {
    let mut out = BTreeMap::new();
    let body = &lib[lib.find("extern \"C\" {").expect("extern block")..];
    for chunk in body.split("pub fn ").skip(1) {
        let decl = squash(&chunk[..chunk.find(';').unwrap()]);
        let open = decl.find('(').unwrap();
        let close = decl.rfind(')').unwrap();
        let ret = decl[close + 1..].trim().trim_start_matches("->").trim();
        let ret = if ret.is_empty() { "()".to_string() } else { ret.to_string() };
        out.insert(decl[..open].trim().to_string(), (rust_params(&decl[open + 1..close]), ret));
    }
    out
}

fn rust_callbacks(lib: &str) -> BTreeMap<String, Sig> {
    let mut out = BTreeMap::new();
    // Each `pub type ... ;` item, on one line or (as rustfmt breaks long
    // ones) on several.
    for chunk in lib.split("pub type ").skip(1) {
        let item = squash(&chunk[..chunk.find(';').unwrap()]);
        let Some((name, ty)) = item.split_once(" = Option<unsafe extern \"C\" fn(") else {
            continue;
        };
        let close = ty.rfind(')').unwrap();
        let ret = ty[close + 1..].trim_end_matches('>').trim().trim_start_matches("->").trim();
        let ret = if ret.is_empty() { "()".to_string() } else { ret.to_string() };
        out.insert(name.to_string(), (rust_params(&ty[..close]), ret));
    }
    out
}

#[test]
fn every_function_matches_the_header() {
    let h = strip_c_comments(&header_text());
    let c = c_functions(&h);
    let r = rust_functions(&lib_text());
    assert!(c.len() > 100, "parsed only {} C functions", c.len());
    let mut problems = vec![];
    for (name, sig) in &c {
        match r.get(name) {
            None => problems.push(format!("{name}: missing in src/lib.rs")),
            Some(rs) if rs != sig => problems.push(format!("{name}: header {sig:?}, Rust {rs:?}")),
            _ => {}
        }
    }
    for name in r.keys().filter(|n| !c.contains_key(*n)) {
        problems.push(format!("{name}: not in the header"));
    }
    assert!(problems.is_empty(), "drift:\n{}", problems.join("\n"));
}

#[test]
fn every_callback_type_matches_the_header() {
    let h = strip_c_comments(&header_text());
    let c = c_callbacks(&h);
    let r = rust_callbacks(&lib_text());
    assert!(c.len() >= 10, "parsed only {} callback typedefs", c.len());
    assert_eq!(c, r);
}

#[test]
fn numeric_constants_match_the_header() {
    let h = strip_c_comments(&header_text());
    let mut c = BTreeMap::new();
    // `#define UVA_X 1` and enum members `UVA_X = 1`.
    for line in h.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() >= 3 && words[0] == "#define" && words[1].starts_with("UVA_") {
            if let Ok(v) = words[2].parse::<i64>() {
                c.insert(words[1].to_string(), v);
            }
        }
        if words.len() >= 3 && words[0].starts_with("UVA_") && words[1] == "=" {
            let v = words[2].trim_end_matches(',').parse::<i64>().unwrap();
            c.insert(words[0].to_string(), v);
        }
    }
    assert!(c.contains_key("UVA_TASK_PENDING") && c.contains_key("UVA_STREAM_NODELAY"));
    let lib = lib_text();
    for (name, value) in &c {
        let needle = format!("pub const {name}: ");
        let line = lib.lines().find(|l| l.starts_with(&needle)).unwrap_or_else(|| panic!("{name} is not declared"));
        let rust_value: i64 = line.rsplit('=').next().unwrap().trim().trim_end_matches(';').parse().unwrap();
        assert_eq!(rust_value, *value, "{name}");
    }
    assert_eq!(uvasync_sys::UVA_TICKS_PERIOD, 1 << 30);
}

/// Each error constant's value is the code the library names that way, and
/// every code of the header's list has a constant.
#[test]
fn error_codes_match_the_library() {
    let h = header_text();
    let names: Vec<&str> = h
        .split("XX(")
        .skip(2) // the `#define ... (XX)` parameter lists
        .filter_map(|s| s.split(',').next())
        .filter(|n| n.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .collect();
    assert!(names.len() > 80, "parsed {} error names", names.len());
    let lib = lib_text();
    for name in names {
        let needle = format!("pub const UVA_{name}: c_int = ");
        let line = lib.lines().find(|l| l.starts_with(&needle)).unwrap_or_else(|| panic!("UVA_{name} is not declared"));
        let value: i32 = line[needle.len()..].trim_end_matches(';').parse().unwrap();
        let got = unsafe { CStr::from_ptr(uvasync_sys::uva_err_name(value)) };
        assert_eq!(got.to_str().unwrap(), name, "UVA_{name} = {value}");
    }
}

#[test]
fn linked_library_is_version_1() {
    let v = unsafe { uvasync_sys::uva_version() };
    assert_eq!(v >> 16, uvasync_sys::UVA_VERSION_HEX >> 16);
    assert!(v >= uvasync_sys::UVA_VERSION_HEX);
}
