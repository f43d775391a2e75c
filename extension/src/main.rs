fn main() {
    mongo_sidecar::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        // Lambda gives small functions a fraction of one vCPU: two workers are plenty.
        .worker_threads(2)
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
