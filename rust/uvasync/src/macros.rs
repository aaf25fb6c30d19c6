//! `join!` and `select!` for the crate's futures (any future, in fact):
//! they take futures by value (or `&mut` to an `Unpin` one) and pin them
//! themselves, so no `.fuse()` or `pin!` is needed.

/// Waits for every future and gives their outputs as a tuple, as tokio's
/// `join!`. The futures run concurrently in the calling task.
///
/// ```
/// uvasync::run(async {
///     let (a, b) = uvasync::join!(async { 1 }, async { uvasync::sleep_ms(1).await; "two" });
///     assert_eq!((a, b), (1, "two"));
/// });
/// ```
#[macro_export]
macro_rules! join {
    ($($fut:expr),+ $(,)?) => {
        $crate::__join_impl!(@pin [] $($fut,)+)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __join_impl {
    // Each step pins one future and makes its output slot; the names come
    // from different expansions, so hygiene keeps them apart.
    (@pin [$($done:tt)*] $fut:expr, $($rest:tt)*) => {{
        let mut fut = ::core::pin::pin!(::core::future::IntoFuture::into_future($fut));
        let mut out = ::core::option::Option::None;
        $crate::__join_impl!(@pin [$($done)* (fut, out)] $($rest)*)
    }};
    (@pin [$(($fut:ident, $out:ident))*]) => {{
        ::core::future::poll_fn(|cx| {
            let mut all = true;
            $(
                if $out.is_none() {
                    match ::core::future::Future::poll($fut.as_mut(), cx) {
                        ::core::task::Poll::Ready(v) => $out = ::core::option::Option::Some(v),
                        ::core::task::Poll::Pending => all = false,
                    }
                }
            )*
            if all { ::core::task::Poll::Ready(()) } else { ::core::task::Poll::Pending }
        })
        .await;
        ($($out.take().unwrap(),)*)
    }};
}

/// Waits for the first of several futures and runs its branch, as tokio's
/// `select!`: `pattern = future => expression,` per branch, then an
/// optional `else => expression`. The futures are polled in the order
/// written (as tokio's `biased;`, which is accepted and changes nothing);
/// the others are dropped when a branch runs. A future whose output does
/// not match its pattern disables its branch and the others go on; with
/// every branch disabled the `else` branch runs (without one: a panic).
/// Branch expressions run in the calling async context (they may
/// `.await`, `break`, `return`).
///
/// ```
/// use std::time::Duration;
/// uvasync::run(async {
///     let (tx, mut rx) = uvasync::channel::<u32>(1);
///     let got = uvasync::select! {
///         Some(v) = rx.recv() => v,
///         _ = uvasync::sleep(Duration::from_millis(20)) => 0,
///     };
///     assert_eq!(got, 0);
///     tx.try_send(5).unwrap();
///     let got = uvasync::select! {
///         biased;
///         Some(v) = rx.recv() => v,
///         _ = uvasync::sleep(Duration::from_secs(5)) => 0,
///     };
///     assert_eq!(got, 5);
/// });
/// ```
#[macro_export]
macro_rules! select {
    (biased; $($rest:tt)*) => {
        $crate::select!($($rest)*)
    };
    ($($rest:tt)+) => {
        $crate::__select_impl!(@parse [] $($rest)+)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_impl {
    // Parse the branches into [(pattern) (future) (body)] groups.
    (@parse [$($b:tt)*] else => $else:expr $(,)?) => {
        $crate::__select_impl!(@pin [] [$($b)*] ($else))
    };
    (@parse [$($b:tt)*] $p:pat = $f:expr => $body:block $(,)? $($rest:tt)*) => {
        $crate::__select_impl!(@parse [$($b)* [($p) ($f) ($body)]] $($rest)*)
    };
    (@parse [$($b:tt)*] $p:pat = $f:expr => $body:expr, $($rest:tt)*) => {
        $crate::__select_impl!(@parse [$($b)* [($p) ($f) ($body)]] $($rest)*)
    };
    (@parse [$($b:tt)*] $p:pat = $f:expr => $body:expr) => {
        $crate::__select_impl!(@parse [$($b)* [($p) ($f) ($body)]])
    };
    (@parse [$($b:tt)*]) => {
        $crate::__select_impl!(@pin [] [$($b)*] (::core::panic!("select!: every branch is disabled and there is no else branch")))
    };
    // Pin each future with its output slot and "disabled" flag.
    (@pin [$($done:tt)*] [[($p:pat) ($f:expr) ($body:expr)] $($rest:tt)*] ($else:expr)) => {{
        let mut fut = ::core::pin::pin!(::core::future::IntoFuture::into_future($f));
        let mut out = ::core::option::Option::None;
        let mut off = false;
        $crate::__select_impl!(@pin [$($done)* [fut out off ($p) ($body)]] [$($rest)*] ($else))
    }};
    (@pin [$([$fut:ident $out:ident $off:ident ($p:pat) ($body:expr)])*] [] ($else:expr)) => {{
        let ready = ::core::future::poll_fn(|cx| {
            let mut live = false;
            $(
                if !$off {
                    if let ::core::task::Poll::Ready(v) = ::core::future::Future::poll($fut.as_mut(), cx) {
                        #[allow(unreachable_patterns, unused_variables)]
                        match &v {
                            $p => {
                                $out = ::core::option::Option::Some(v);
                                return ::core::task::Poll::Ready(true);
                            }
                            _ => $off = true,
                        }
                    } else {
                        live = true;
                    }
                }
            )*
            if live { ::core::task::Poll::Pending } else { ::core::task::Poll::Ready(false) }
        })
        .await;
        let _ = ready;
        $crate::__select_impl!(@run [$([$out ($p) ($body)])*] ($else))
    }};
    (@run [[$out:ident ($p:pat) ($body:expr)] $($rest:tt)*] ($else:expr)) => {
        if let ::core::option::Option::Some(v) = $out.take() {
            #[allow(unreachable_patterns)]
            match v {
                $p => $body,
                _ => ::core::unreachable!(),
            }
        } else {
            $crate::__select_impl!(@run [$($rest)*] ($else))
        }
    };
    (@run [] ($else:expr)) => {
        $else
    };
}
