//! `#[uvasync::main]` and `#[uvasync::test]`: an `async fn` run to its end
//! on a new uvasync runtime (`uvasync::run`). Used through the `uvasync`
//! crate (feature `macros`, on by default), whose docs and tests show them
//! at work.
//!
//! Written on the compiler's own token API (no syn): the attribute drops
//! the `async` before `fn` and wraps the body in `::uvasync::run(async ...)`.
use proc_macro::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};

/// Runs `async fn main` on a uvasync runtime.
///
/// ```text
/// #[uvasync::main]
/// async fn main() {
///     uvasync::sleep_ms(1).await;
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args, item, "main", false)
}

/// Runs an `async fn` test on its own uvasync runtime (a `#[test]`).
///
/// ```text
/// #[uvasync::test]
/// async fn sleeps() {
///     uvasync::sleep_ms(1).await;
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args, item, "test", true)
}

fn expand(args: TokenStream, item: TokenStream, which: &str, is_test: bool) -> TokenStream {
    if !args.is_empty() {
        return error(Span::call_site(), &format!("#[uvasync::{which}] takes no arguments"));
    }
    let mut tokens: Vec<TokenTree> = item.into_iter().collect();
    // `async` right before `fn` (after attributes, visibility and the like).
    let fn_at = tokens.iter().position(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "fn"));
    let Some(fn_at) = fn_at else {
        return error(Span::call_site(), &format!("#[uvasync::{which}] goes on an `async fn`"));
    };
    let async_at = tokens[..fn_at].iter().rposition(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "async"));
    let Some(async_at) = async_at else {
        return error(tokens[fn_at].span(), &format!("#[uvasync::{which}]: the function must be `async fn`"));
    };
    let body = match tokens.pop() {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => g,
        _ => return error(Span::call_site(), &format!("#[uvasync::{which}]: the function needs a body")),
    };
    tokens.remove(async_at);

    // { ::uvasync::run(async move <body>) }
    let span = body.span();
    let mut call: Vec<TokenTree> = Vec::new();
    for part in ["uvasync", "run"] {
        call.push(Punct::new(':', Spacing::Joint).into());
        call.push(Punct::new(':', Spacing::Alone).into());
        call.push(Ident::new(part, span).into());
    }
    let inner: TokenStream = [TokenTree::from(Ident::new("async", span)), Ident::new("move", span).into(), body.into()]
        .into_iter()
        .collect();
    call.push(Group::new(Delimiter::Parenthesis, inner).into());
    let new_body = Group::new(Delimiter::Brace, call.into_iter().collect());
    tokens.push(new_body.into());

    let mut out: Vec<TokenTree> = Vec::new();
    if is_test {
        // #[::core::prelude::v1::test]
        out.push(Punct::new('#', Spacing::Alone).into());
        let path: TokenStream = "::core::prelude::v1::test".parse().unwrap();
        out.push(Group::new(Delimiter::Bracket, path).into());
    }
    out.extend(tokens);
    out.into_iter().collect()
}

fn error(span: Span, msg: &str) -> TokenStream {
    let mut ts: TokenStream = format!("::core::compile_error!({msg:?});").parse().unwrap();
    ts = ts
        .into_iter()
        .map(|mut t| {
            t.set_span(span);
            t
        })
        .collect();
    ts
}
