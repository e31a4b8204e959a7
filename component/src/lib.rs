#[cfg(target_arch = "wasm32")]
mod bindings {
    wit_bindgen::generate!({
        world: "tap-connector",
        path: "../wit",
        with: {
            "wasi:http/types@0.2.12": wasip2::http::types,
            "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        },
    });
    use exports::proofpoint::tap::connector::*;
    struct C;
    impl Guest for C {
        fn sync(_s: Settings, _w: Window) -> Result<SyncResult, SyncError> {
            Err(SyncError::InvalidInput("x".into()))
        }
    }
    export!(C);
}
