//! `self_test`: DAOS's fabric benchmark. Flags and report come from `tools::self_test`; the run loop
//! is cart's self-test protocol, run here (this process is the master) or on remote masters (`-m`).

use std::sync::Arc;
use std::time::Duration;

use cart::selftest::{self, MsgSpec as CMsgSpec, MsgType as CMsgType, Start};
use cart::{Config, Context, Endpoint, Group};
use daos_common::DaosErrno;
use tools::self_test::args::{EndpointId, MsgSpec, MsgType, Plan, SelfTestArgs};
use tools::self_test::stats::{Sample, TupleResult};
use tools::self_test::{progress, report};

fn conv(m: MsgSpec) -> CMsgSpec {
    let ty = match m.ty {
        MsgType::Empty => CMsgType::Empty,
        MsgType::Iov => CMsgType::Iov,
        MsgType::BulkGet => CMsgType::BulkGet,
        MsgType::BulkPut => CMsgType::BulkPut,
    };
    CMsgSpec { ty, size: m.size }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let (args, defaulted) = match SelfTestArgs::try_parse_with_source(std::env::args_os()) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    let plan = match args.plan(defaulted) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("self_test: {e}");
            std::process::exit(2);
        }
    };
    for w in &plan.warnings {
        eprintln!("Warning: {w}");
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("self_test: tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(&args, &plan)) {
        eprintln!("self_test: {e}");
        std::process::exit(1);
    }
}

/// The client's context configuration. The client polls its CQ for the whole run (DAOS's
/// self_test drives `crt_progress(ctx, 0)` in a loop), so it opens it without a wait object
/// unless `CART_PROGRESS_MODE` is set: over tcp;ofi_rxm the wait fd alone costs ~0.5-0.7 µs per
/// round trip on the polling side (8 B at 1 in flight against a block-mode server: 9.6-9.9 µs
/// busy, 10.1-10.7 µs block). Servers keep the default block mode, which sleeps when idle.
fn client_config(timeout: Option<Duration>, mode_set: bool) -> Config {
    Config {
        timeout,
        busy_poll: (!mode_set).then_some(true),
        ..Default::default()
    }
}

async fn run(args: &SelfTestArgs, plan: &Plan) -> Result<(), String> {
    let group =
        Group::attach(&plan.attach_info_dir, &plan.params.group).map_err(|e| e.to_string())?;
    let cfg = client_config(
        args.timeout.map(Duration::from_secs),
        std::env::var_os("CART_PROGRESS_MODE").is_some(),
    );
    let ctx = Context::new(&cfg, u32::MAX, 0).map_err(|e| e.to_string())?;
    let p = &plan.params;
    let eps: Vec<Endpoint> = p
        .endpoints
        .iter()
        .map(|e| Endpoint::new(&group, e.rank, e.tag))
        .collect();
    let timeout = args.timeout.map(Duration::from_secs);

    if !args.no_sync {
        // Ping every distinct endpoint once so connection set-up is not measured.
        let mut uniq = p.endpoints.clone();
        uniq.sort();
        uniq.dedup();
        for e in &uniq {
            let ep = Endpoint::new(&group, e.rank, e.tag);
            if let Err(err) = ctx
                .send_with(
                    &ep,
                    &selftest::CloseSession { id: 0 },
                    Some(Duration::from_secs(10)),
                )
                .await
            {
                eprintln!(
                    "Warning: endpoint {}:{} did not answer the sync ping: {err}",
                    e.rank, e.tag
                );
            }
        }
    }
    if !args.json {
        print!("{}", report::render_params(p));
    }
    let total = p.total_repetitions();
    let reps = u32::try_from(total).map_err(|_| "too many repetitions".to_string())?;
    let mut all = Vec::new();
    for sizes in &p.sizes {
        let pb = progress::bar(total * plan.masters.len().max(1) as u64, !args.json);
        pb.set_message(sizes.to_string());
        let mut results = Vec::new();
        if plan.masters.is_empty() {
            let pbc = pb.clone();
            let cb: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |n| pbc.set_position(n));
            let opts = selftest::RunOpts {
                timeout,
                align: args.align,
                progress: Some(cb),
            };
            let r = selftest::run(
                &ctx,
                &eps,
                conv(sizes.send),
                conv(sizes.reply),
                reps,
                p.max_inflight,
                opts,
            )
            .await
            .map_err(|e| e.to_string())?;
            results.push(tuple(plan, sizes, None, r.samples, r.duration_ns));
        } else {
            let members: Vec<(u32, String)> = group
                .ranks()
                .into_iter()
                .filter_map(|r| group.uri(r).ok().map(|u| (r, u.to_string())))
                .collect();
            for m in &plan.masters {
                let mep = Endpoint::new(&group, m.rank, m.tag);
                let start = Start {
                    group: p.group.clone(),
                    members: members.clone(),
                    endpoints: p.endpoints.iter().map(|e| (e.rank, e.tag)).collect(),
                    send: conv(sizes.send),
                    reply: conv(sizes.reply),
                    reps,
                    inflight: p.max_inflight,
                    timeout_ms: timeout.map_or(0, |t| t.as_millis() as u64),
                    align: args.align,
                };
                let r = match selftest::run_remote(&ctx, &mep, start, Duration::from_secs(1)).await
                {
                    Ok(r) => r,
                    Err(e) => {
                        // A master that cannot run is reported with every RPC failed, not a crash.
                        eprintln!("Warning: master {}:{} failed: {e}", m.rank, m.tag);
                        let rc = e.rc();
                        selftest::RunResult {
                            samples: (0..reps)
                                .map(|i| selftest::Sample {
                                    endpoint: i % eps.len() as u32,
                                    latency_ns: 0,
                                    rc,
                                })
                                .collect(),
                            duration_ns: 1,
                        }
                    }
                };
                pb.inc(total);
                results.push(tuple(plan, sizes, Some(*m), r.samples, r.duration_ns));
            }
        }
        pb.finish_and_clear();
        if !args.json {
            print!("{}", report::render_tuple_group(p, &results));
        }
        all.extend(results);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::to_json(p, &all)).map_err(|e| e.to_string())?
        );
    }
    ctx.shutdown();
    Ok(())
}

fn tuple(
    plan: &Plan,
    sizes: &tools::self_test::args::SizePair,
    master: Option<EndpointId>,
    samples: Vec<selftest::Sample>,
    duration_ns: u64,
) -> TupleResult {
    let p = &plan.params;
    TupleResult {
        sizes: *sizes,
        max_inflight: p.max_inflight,
        repetitions: samples.len() as u32,
        duration: Duration::from_nanos(duration_ns.max(1)),
        master,
        endpoints: p.endpoints.clone(),
        samples: samples
            .into_iter()
            .map(|s| Sample {
                endpoint: s.endpoint as usize,
                latency_ns: s.latency_ns,
                rc: s.rc,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_polls_without_wait_object_unless_the_mode_is_set() {
        let c = client_config(None, false).resolve().unwrap();
        assert!(c.busy_poll);
        // CART_PROGRESS_MODE set: the field stays open, so the environment decides.
        assert_eq!(client_config(None, true).busy_poll, None);
        assert_eq!(
            client_config(Some(Duration::from_secs(3)), false).timeout,
            Some(Duration::from_secs(3))
        );
    }
}
