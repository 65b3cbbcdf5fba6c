//! `cart_server --group-name G --rank N --path DIR [--contexts K]`: a cart server with no storage,
//! for benchmarking a fabric alone (every context serves the self-test protocol). It publishes its
//! URI in `DIR/G.attach_info_tmp` (under the file's lock), prints a ready line, serves until
//! SIGTERM/SIGINT and then removes its entry.
//!
//! Each context runs on its own thread with a current-thread tokio runtime (DAOS: one xstream per
//! context), so a request's completion, handler and reply never hop threads.

use std::path::PathBuf;
use std::sync::mpsc;

use cart::group::{publish, unpublish};
use cart::{Config, Context};
use clap::Parser;
use tokio::sync::oneshot;

#[derive(Debug, Parser)]
#[command(
    name = "cart_server",
    about = "cart server without storage (fabric benchmark target)"
)]
struct Args {
    /// Group to join.
    #[arg(short = 'g', long = "group-name", default_value = "daos_server")]
    group_name: String,
    /// This server's rank.
    #[arg(short = 'r', long = "rank")]
    rank: u32,
    /// Directory of the attach-info file.
    #[arg(short = 'p', long = "path", default_value = "/tmp")]
    path: PathBuf,
    /// Contexts (tags 0..K) to serve.
    #[arg(short = 'c', long = "contexts", default_value_t = 1)]
    contexts: u32,
    /// Provider (overrides D_PROVIDER).
    #[arg(long = "provider")]
    provider: Option<String>,
}

struct Running {
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

fn start_context(
    cfg: Config,
    rank: u32,
    tag: u32,
    uris: mpsc::Sender<Result<(u32, String), String>>,
    siblings: Option<oneshot::Receiver<Vec<String>>>,
) -> std::io::Result<Running> {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("cart-ctx-{tag}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = uris.send(Err(format!("tokio runtime: {e}")));
                    return;
                }
            };
            rt.block_on(async move {
                let ctx = match Context::new(&cfg, rank, tag) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = uris.send(Err(format!("context {tag}: {e}")));
                        return;
                    }
                };
                let _ = uris.send(Ok((tag, ctx.uri().to_string())));
                if let Some(rx) = siblings {
                    if let Ok(list) = rx.await {
                        ctx.set_sibling_uris(list);
                    }
                }
                let _ = stop_rx.await;
                ctx.shutdown();
            });
        })?;
    Ok(Running {
        stop: stop_tx,
        thread,
    })
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("cart_server: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    if args.contexts == 0 || args.contexts > 128 {
        return Err(format!(
            "--contexts {} outside 1..=128 (DAOS CRT_CTX_NUM)",
            args.contexts
        ));
    }
    let cfg = Config {
        provider: args.provider.clone(),
        ..Default::default()
    };
    let resolved = cfg.resolve().map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel();
    let (sib_tx, sib_rx) = oneshot::channel();
    let mut running = Vec::new();
    let mut sib_rx = Some(sib_rx);
    for tag in 0..args.contexts {
        let r = start_context(
            cfg.clone(),
            args.rank,
            tag,
            tx.clone(),
            if tag == 0 { sib_rx.take() } else { None },
        )
        .map_err(|e| e.to_string())?;
        running.push(r);
    }
    drop(tx);
    let mut uris = vec![String::new(); args.contexts as usize];
    for _ in 0..args.contexts {
        match rx.recv() {
            Ok(Ok((tag, uri))) => uris[tag as usize] = uri,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("a context thread died during start-up".into()),
        }
    }
    let _ = sib_tx.send(uris.clone());
    publish(&args.path, &args.group_name, args.rank, &uris[0]).map_err(|e| e.to_string())?;
    println!(
        "cart_server ready: group {} rank {} contexts {} provider {} uri {}",
        args.group_name,
        args.rank,
        args.contexts,
        resolved.provider.name(),
        uris[0]
    );

    cart::transport::ofi::restore_default_signals();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let sig = rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        Ok::<_, String>(tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        })
    })?;
    let res = unpublish(&args.path, &args.group_name, args.rank).map_err(|e| e.to_string());
    for r in running {
        let _ = r.stop.send(());
        let _ = r.thread.join();
    }
    println!(
        "cart_server: {sig}: rank {} left group {}",
        args.rank, args.group_name
    );
    res
}
