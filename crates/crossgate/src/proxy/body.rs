//! Body types of the request path: what the gateway answers with, and the
//! client's request body on its way upstream, both streamed.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::OwnedSemaphorePermit;

use crate::proxy::client::UpstreamBody;
use crate::proxy::pool::InFlight;

/// A response body: a fixed buffer (mocks, gateway errors) or the upstream's
/// streamed body, without boxing.
#[derive(Debug)]
pub struct GatewayBody(Kind);

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    /// The upstream's body and its `max_upstream_requests` slot, given back
    /// when hyper drops the body: once it has ended, or the client went away.
    /// A `101`'s body has none: its tunnel holds the slot.
    Upstream {
        body: UpstreamBody,
        /// Held only to be dropped with the body.
        _slot: Option<OwnedSemaphorePermit>,
        /// A `least_requests` pool's count of the target's requests, held
        /// the same way.
        _in_flight: Option<InFlight>,
    },
}

impl GatewayBody {
    /// No body.
    pub fn empty() -> Self {
        Self(Kind::Full(None))
    }

    /// A fixed body.
    pub fn full(bytes: Bytes) -> Self {
        Self(Kind::Full((!bytes.is_empty()).then_some(bytes)))
    }

    /// The upstream's body, streamed as it arrives, holding `slot` and
    /// `in_flight` until it ends.
    pub fn upstream(
        body: UpstreamBody,
        slot: Option<OwnedSemaphorePermit>,
        in_flight: Option<InFlight>,
    ) -> Self {
        Self(Kind::Upstream {
            body,
            _slot: slot,
            _in_flight: in_flight,
        })
    }
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.0 {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Upstream { body, .. } => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Upstream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Upstream { body, .. } => body.size_hint(),
        }
    }
}

/// The client's request body, streamed upstream, failing with
/// [`BodyTooLarge`] once more than `limit` bytes have passed.
#[derive(Debug)]
pub struct LimitedBody {
    /// `None` for a request sent without a body: health checks, and
    /// bodiless requests kept replayable for a retry.
    inner: Option<Incoming>,
    remaining: u64,
    limit: u64,
}

/// The request body exceeded the route's `max_body_bytes`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body is larger than the route's limit of {limit} bytes")]
pub struct BodyTooLarge {
    /// The route's limit.
    pub limit: u64,
}

/// Errors of a [`LimitedBody`].
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    /// Reading from the client failed.
    #[error(transparent)]
    Client(#[from] hyper::Error),
    /// The body exceeded the limit.
    #[error(transparent)]
    TooLarge(#[from] BodyTooLarge),
}

impl LimitedBody {
    /// Wraps `inner`; `limit` of `None` means no limit.
    pub fn new(inner: Incoming, limit: Option<u64>) -> Self {
        let limit = limit.unwrap_or(u64::MAX);
        Self {
            inner: Some(inner),
            remaining: limit,
            limit,
        }
    }

    /// No body at all.
    pub fn empty() -> Self {
        Self {
            inner: None,
            remaining: 0,
            limit: 0,
        }
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        let this = &mut *self;
        let Some(inner) = &mut this.inner else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        return Poll::Ready(Some(Err(BodyTooLarge { limit: this.limit }.into())));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Incoming::size_hint)
    }
}
