fn main() {
    mongo_sidecar::logging::init();
    // One thread. Lambda gives small functions a fraction of one vCPU, and a request's work is
    // short hops between the HTTP connection, the driver's pool and its socket: on one thread
    // those hops are function calls, not wake-ups handed across threads.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(mongo_sidecar::run());
    // Exit now: the Extensions API loop would otherwise keep polling for events.
    std::process::exit(code);
}
