//! A tower [`Layer`] that applies a [`Policy`] to a service: axum routers,
//! hyper services and tonic servers alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::{Decision, Policy};

/// Applies a compiled [`Policy`] to every request of the wrapped service.
///
/// Preflights, and requests refused with `block_disallowed`, are answered by
/// the layer with an empty body (`ResBody::default()`) and never reach the
/// service. Every response the service returns, error statuses included,
/// gets the CORS headers, so a browser script can read a 401 or a 500.
///
/// ```
/// use crossgate_cors::{CorsLayer, PolicyConfig};
/// use tower::{ServiceBuilder, service_fn};
///
/// let policy = PolicyConfig::builder()
///     .origins(["https://app.example.com"])
///     .compile()
///     .unwrap();
/// let service = ServiceBuilder::new()
///     .layer(CorsLayer::new(policy))
///     .service(service_fn(|_: http::Request<String>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
///     }));
/// # let _ = service;
/// ```
#[derive(Debug, Clone)]
pub struct CorsLayer {
    policy: Arc<Policy>,
}

impl CorsLayer {
    /// A layer applying `policy`.
    pub fn new(policy: Policy) -> Self {
        Self::from_shared(Arc::new(policy))
    }

    /// A layer applying a policy shared with other code.
    pub fn from_shared(policy: Arc<Policy>) -> Self {
        Self { policy }
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = CorsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorsService {
            inner,
            policy: Arc::clone(&self.policy),
        }
    }
}

/// The service produced by [`CorsLayer`].
#[derive(Debug, Clone)]
pub struct CorsService<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CorsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let decision = self.policy.decide(request.method(), request.headers());
        let policy = Arc::clone(&self.policy);
        let state = match decision.short_circuit() {
            Some(_) => State::Answered,
            None => State::Inner {
                future: self.inner.call(request),
            },
        };
        ResponseFuture {
            state,
            decision,
            policy,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`CorsService`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
        decision: Decision,
        policy: Arc<Policy>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProjection]
    enum State<F> {
        Inner { #[pin] future: F },
        Answered,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.state.project() {
            StateProjection::Inner { future } => match future.poll(cx) {
                Poll::Ready(Ok(response)) => response,
                other => return other,
            },
            StateProjection::Answered => {
                let mut response = Response::new(ResBody::default());
                if let Some(status) = this.decision.short_circuit() {
                    *response.status_mut() = status;
                }
                response
            }
        };
        this.policy.apply(this.decision, response.headers_mut());
        Poll::Ready(Ok(response))
    }
}
