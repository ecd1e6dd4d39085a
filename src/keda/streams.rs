//! The server-streaming rpcs as plain `Stream`s (no spawned task: when KEDA goes away the
//! stream is dropped and nothing keeps running).
//!
//! * `StreamIsActive`: evaluate now and send; then re-evaluate every `stream_interval` and
//!   send only on change; on an evaluation error send the error status and end.
//! * `StreamMetricSpec`: send the spec (a pure function of the metadata) and hold the
//!   stream open.
//!
//! Both end cleanly (status OK) when shutdown begins.

use futures_util::{stream, Stream};
use tokio::sync::watch;
use tonic::Status;
use tracing::Instrument;

use super::{
    call::Call,
    evaluator::Evaluator,
    pb::{GetMetricSpecResponse, IsActiveResponse},
    service::ExternalScalerService,
    target::ScalerTarget,
};

/// Resolves when shutdown has begun (or the signal's sender is gone).
async fn shut_down(rx: &mut watch::Receiver<bool>) {
    // An error means the sender was dropped: treat it as shutdown as well.
    let _ = rx.wait_for(|down| *down).await;
}

struct ActiveState<E> {
    service: ExternalScalerService<E>,
    target: ScalerTarget,
    shutdown: watch::Receiver<bool>,
    last: Option<bool>,
    done: bool,
    call: Call,
}

/// `StreamIsActive` for one target.
pub(super) fn is_active<E: Evaluator>(
    service: ExternalScalerService<E>,
    target: ScalerTarget,
    call: Call,
) -> impl Stream<Item = Result<IsActiveResponse, Status>> + Send + 'static {
    let state = ActiveState {
        shutdown: service.shutdown_signal(),
        service,
        target,
        last: None,
        done: false,
        call,
    };
    stream::unfold(state, |s| {
        let span = s.call.span().clone();
        next_active(s).instrument(span)
    })
}

/// The next message of a `StreamIsActive` (in the rpc's span).
async fn next_active<E: Evaluator>(
    mut s: ActiveState<E>,
) -> Option<(Result<IsActiveResponse, Status>, ActiveState<E>)> {
    if s.done {
        return None;
    }
    let interval = s.service.settings.stream_interval;
    loop {
        if s.last.is_some() {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = shut_down(&mut s.shutdown) => {
                    s.call.succeed();
                    return None;
                }
            }
        }
        let result = tokio::select! {
            r = s.service.evaluate(&s.target) => r,
            () = shut_down(&mut s.shutdown) => {
                s.call.succeed();
                return None;
            }
        };
        match result {
            Ok(evaluation) if s.last == Some(evaluation.active) => {}
            Ok(evaluation) => {
                s.last = Some(evaluation.active);
                let message = IsActiveResponse {
                    result: evaluation.active,
                };
                return Some((Ok(message), s));
            }
            Err(status) => {
                s.call.fail(&status);
                s.done = true;
                return Some((Err(status), s));
            }
        }
    }
}

enum SpecState {
    Send(GetMetricSpecResponse, watch::Receiver<bool>, Call),
    Hold(watch::Receiver<bool>, Call),
}

/// `StreamMetricSpec`: the spec now, then nothing until shutdown.
pub(super) fn metric_spec(
    shutdown: watch::Receiver<bool>,
    spec: GetMetricSpecResponse,
    call: Call,
) -> impl Stream<Item = Result<GetMetricSpecResponse, Status>> + Send + 'static {
    stream::unfold(
        Some(SpecState::Send(spec, shutdown, call)),
        |state| async move {
            match state? {
                SpecState::Send(spec, rx, call) => {
                    Some((Ok(spec), Some(SpecState::Hold(rx, call))))
                }
                SpecState::Hold(mut rx, mut call) => {
                    shut_down(&mut rx).await;
                    call.succeed();
                    None
                }
            }
        },
    )
}
