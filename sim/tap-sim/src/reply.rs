//! A whole answer before it becomes an HTTP response.

use bytes::Bytes;
use http::StatusCode;

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    /// `application/json` when true, `text/plain` otherwise (only when
    /// there is a body).
    pub is_json: bool,
}

impl Reply {
    pub fn json(text: impl Into<Bytes>) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: text.into(),
            is_json: true,
        }
    }

    pub fn text(status: StatusCode, text: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            body: text.into(),
            is_json: false,
        }
    }

    pub fn empty(status: StatusCode) -> Reply {
        Reply::text(status, Bytes::new())
    }

    pub fn bad_request(text: impl Into<Bytes>) -> Reply {
        Reply::text(StatusCode::BAD_REQUEST, text)
    }
}
