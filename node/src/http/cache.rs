//! HTTP caching of the public dashboard: validators, `Cache-Control`, and
//! the node's own store of rendered answers.
//!
//! Every answer carries a weak `ETag` naming the version of the figures it
//! shows (the last log index that changed them, from the aggregates and
//! the registry) and `Cache-Control: public` with the configured max-age
//! and stale-while-revalidate, so browsers, nginx and CDNs can carry the
//! crowd. `If-None-Match` with the current tag gets 304 before anything is
//! rendered. The hottest answers (region pages and their JSON) are kept
//! rendered, with their gzip and brotli bodies, per (route, region,
//! contest): a crowd on one page costs one render per change, and a
//! change in one kabupaten renders nothing of another. A kept answer is
//! served for up to one watch tick without looking at the state, so the
//! state's lock is taken at most a few times a second per page however
//! many read it; the live events lag the same tick.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use headers::{ETag, HeaderMapExt, IfNoneMatch};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::AnswerLabels;
use crate::store::SmState;
use crate::watch::TICK;

/// What shared caches may do with an answer, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_age: u32,
    pub stale_while_revalidate: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_age: 2,
            stale_while_revalidate: 10,
        }
    }
}

impl Policy {
    /// Shared caches (nginx, a CDN) are told a second less than browsers:
    /// nginx keeps time in whole seconds, so an answer it was told to keep
    /// N seconds may stay up to N+1. A reader through it then sees a new
    /// result within `max_age` and the node's tick, as one reading a node.
    fn shared_max_age(&self) -> u32 {
        if self.max_age > 1 {
            self.max_age - 1
        } else {
            self.max_age
        }
    }

    fn header(&self) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "public, max-age={}, s-maxage={}, stale-while-revalidate={}",
            self.max_age,
            self.shared_max_age(),
            self.stale_while_revalidate
        ))
        .expect("ASCII")
    }
}

/// The version of what an answer shows. Answers of one version differ only
/// in when and by which node they were made, so the tag is weak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// No figure, name or contest shown changed after this log index.
    pub changed: u64,
    /// The node had lost touch with the leader (the page says so).
    pub out_of_touch: bool,
}

impl Version {
    /// The version of a page about `region` for `contest` in `st`. A
    /// region's sums change whenever any below it do, and a registry load
    /// is the only command that changes names, contests or their scope.
    pub fn of(st: &SmState, region: &str, contest: &str, out_of_touch: bool) -> Version {
        let now = st.applied_index();
        let registry = st.tally.registry_change().unwrap_or(st.loaded_at);
        let sums = st.tally.last_change(region, contest, st.loaded_at, now);
        Version {
            changed: sums.max(registry).min(now),
            out_of_touch,
        }
    }

    fn etag(&self) -> String {
        let x = if self.out_of_touch { "-x" } else { "" };
        format!("W/\"{}{x}\"", self.changed)
    }
}

/// The validators and caching headers of an answer of version `v`.
fn validators(h: &mut HeaderMap, etag: &HeaderValue, policy: &Policy) {
    h.insert(header::ETAG, etag.clone());
    h.insert(header::CACHE_CONTROL, policy.header());
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
}

/// Whether the client already holds `etag` (weak comparison, as
/// `If-None-Match` asks).
fn holds(req: &HeaderMap, etag: &HeaderValue) -> bool {
    let (Some(inm), Ok(tag)) = (
        req.typed_get::<IfNoneMatch>(),
        etag.to_str().unwrap_or("").parse::<ETag>(),
    ) else {
        return false;
    };
    !inm.precondition_passes(&tag)
}

fn not_modified(etag: &HeaderValue, policy: &Policy) -> Response {
    let mut r = StatusCode::NOT_MODIFIED.into_response();
    validators(r.headers_mut(), etag, policy);
    r
}

/// Content codings a client takes, best first among those kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Brotli,
    Gzip,
    Identity,
}

/// The coding to answer in: brotli, else gzip, when `Accept-Encoding`
/// takes it with a non-zero weight.
fn coding(req: &HeaderMap) -> Coding {
    let mut br = false;
    let mut gzip = false;
    for v in req.get_all(header::ACCEPT_ENCODING) {
        for item in v.to_str().unwrap_or("").split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q <= 0.0 {
                continue;
            }
            if name.eq_ignore_ascii_case("br") {
                br = true;
            } else if name.eq_ignore_ascii_case("gzip") || name == "*" {
                gzip = true;
            }
        }
    }
    match (br, gzip) {
        (true, _) => Coding::Brotli,
        (false, true) => Coding::Gzip,
        _ => Coding::Identity,
    }
}

/// One rendered answer, with its compressed bodies made on first asking.
pub struct Rendered {
    version: Version,
    /// The contest it shows (the first of the region's when none was asked).
    contest: String,
    etag: HeaderValue,
    content_type: &'static str,
    identity: Bytes,
    gzip: OnceLock<Bytes>,
    brotli: OnceLock<Bytes>,
    /// When the state last confirmed `version` (ms since `epoch`).
    checked_ms: AtomicU64,
    /// Someone is asking the state whether it changed.
    checking: AtomicBool,
}

impl Rendered {
    pub fn new(
        version: Version,
        contest: String,
        content_type: &'static str,
        body: String,
    ) -> Self {
        Rendered {
            etag: HeaderValue::from_str(&version.etag()).expect("ASCII"),
            version,
            contest,
            content_type,
            identity: Bytes::from(body),
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
            checked_ms: AtomicU64::new(0),
            checking: AtomicBool::new(false),
        }
    }

    fn body(&self, c: Coding) -> Bytes {
        match c {
            Coding::Identity => self.identity.clone(),
            Coding::Gzip => self
                .gzip
                .get_or_init(|| {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
                    e.write_all(&self.identity).expect("in memory");
                    Bytes::from(e.finish().expect("in memory"))
                })
                .clone(),
            Coding::Brotli => self
                .brotli
                .get_or_init(|| {
                    let mut out = Vec::new();
                    let params = brotli::enc::BrotliEncoderParams {
                        quality: 6,
                        ..Default::default()
                    };
                    brotli::BrotliCompress(&mut &self.identity[..], &mut out, &params)
                        .expect("in memory");
                    Bytes::from(out)
                })
                .clone(),
        }
    }

    fn respond(&self, req: &HeaderMap, policy: &Policy) -> Response {
        if holds(req, &self.etag) {
            return not_modified(&self.etag, policy);
        }
        let c = coding(req);
        let mut r = Response::new(Body::from(self.body(c)));
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        match c {
            Coding::Brotli => h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br")),
            Coding::Gzip => h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
            Coding::Identity => None,
        };
        validators(h, &self.etag, policy);
        r
    }
}

/// Which answer a kept one is: route, region, and the contest asked for
/// (empty: the region's first).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub route: &'static str,
    pub region: String,
    pub contest: String,
}

#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<Key, Arc<Rendered>> for Weight {
    fn weight(&self, _: &Key, v: &Arc<Rendered>) -> u64 {
        // Weighed when kept, before any compressed body is made (they are
        // made when first asked for): room for both is reserved, each a
        // quarter of the plain body at most (these pages compress 5-10x).
        (v.identity.len() * 3 / 2) as u64 + 256
    }
}

/// The kept answers of one node, bounded in bytes.
pub struct Pages {
    kept: quick_cache::sync::Cache<Key, Arc<Rendered>, Weight>,
    pub policy: Policy,
    epoch: Instant,
    answers: Family<AnswerLabels, Counter>,
    checks: Counter,
}

/// What a render produced: an answer to keep, or one (an error) to send
/// as it is.
pub type Made = Result<Rendered, Box<Response>>;

impl Pages {
    /// Keeps up to `bytes` of rendered answers; counts every answer in
    /// `answers`, and in `checks` each kept one found current when asked
    /// again after its tick.
    pub fn new(
        policy: Policy,
        bytes: u64,
        answers: Family<AnswerLabels, Counter>,
        checks: Counter,
    ) -> Self {
        Pages {
            kept: quick_cache::sync::Cache::with_weighter(4096, bytes, Weight),
            policy,
            epoch: Instant::now(),
            answers,
            checks,
        }
    }

    fn count(&self, answer: &'static str) {
        self.answers.get_or_create(&AnswerLabels { answer }).inc();
    }

    /// For an answer that is not kept rendered: 304 when the client holds
    /// version `v`, else `render`'s answer with the validators (an error
    /// answer gets none).
    pub fn conditional(
        &self,
        req: &HeaderMap,
        v: Version,
        render: impl FnOnce() -> Response,
    ) -> Response {
        let etag = HeaderValue::from_str(&v.etag()).expect("ASCII");
        if holds(req, &etag) {
            self.count("not_modified");
            return not_modified(&etag, &self.policy);
        }
        let mut r = render();
        if r.status().is_success() {
            self.count("rendered");
            validators(r.headers_mut(), &etag, &self.policy);
        } else {
            self.count("refused");
        }
        r
    }

    /// A kept answer to `req`.
    fn send(&self, kept: &Rendered, req: &HeaderMap) -> Response {
        let r = kept.respond(req, &self.policy);
        self.count(if r.status() == StatusCode::NOT_MODIFIED {
            "not_modified"
        } else {
            "kept"
        });
        r
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The answer for `key`: the kept one while its version is current,
    /// else a new render. `current` tells the version now of a kept answer
    /// showing the given contest (`None`: the state cannot be read now, as
    /// during a snapshot's install, so the kept answer stands); `render`
    /// makes the answer from the state as it is.
    pub async fn serve(
        &self,
        key: Key,
        req: &HeaderMap,
        current: impl FnOnce(&str) -> Option<Version>,
        render: impl FnOnce() -> Made,
    ) -> Response {
        if let Some(kept) = self.kept.get(&key) {
            let fresh =
                self.now_ms() < kept.checked_ms.load(Ordering::Acquire) + TICK.as_millis() as u64;
            // While one request asks the state, the others take the kept
            // answer: it is at most that question's time older.
            if fresh || kept.checking.swap(true, Ordering::AcqRel) {
                return self.send(&kept, req);
            }
            match current(&kept.contest) {
                None => {
                    kept.checking.store(false, Ordering::Release);
                    return self.send(&kept, req);
                }
                Some(v) if v == kept.version => {
                    self.checks.inc();
                    kept.checked_ms.store(self.now_ms(), Ordering::Release);
                    kept.checking.store(false, Ordering::Release);
                    return self.send(&kept, req);
                }
                Some(_) => {}
            }
            let made = self.made(render());
            kept.checking.store(false, Ordering::Release);
            return match made {
                Ok(new) => {
                    self.kept.insert(key, new.clone());
                    self.send(&new, req)
                }
                Err(r) => *r,
            };
        }
        match self.kept.get_value_or_guard_async(&key).await {
            Ok(kept) => self.send(&kept, req),
            Err(guard) => match self.made(render()) {
                Ok(new) => {
                    let _ = guard.insert(new.clone());
                    self.send(&new, req)
                }
                Err(r) => *r,
            },
        }
    }

    fn made(&self, m: Made) -> Result<Arc<Rendered>, Box<Response>> {
        let r = m.inspect_err(|_| self.count("refused"))?;
        self.count("rendered");
        r.checked_ms.store(self.now_ms(), Ordering::Release);
        Ok(Arc::new(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn codings_follow_accept_encoding_and_its_weights() {
        let ae = header::ACCEPT_ENCODING;
        assert_eq!(coding(&req(&[])), Coding::Identity);
        assert_eq!(
            coding(&req(&[(ae.clone(), "gzip, deflate, br")])),
            Coding::Brotli
        );
        assert_eq!(coding(&req(&[(ae.clone(), "gzip")])), Coding::Gzip);
        assert_eq!(
            coding(&req(&[(ae.clone(), "br;q=0, gzip;q=0.5")])),
            Coding::Gzip
        );
        assert_eq!(coding(&req(&[(ae.clone(), "gzip;q=0")])), Coding::Identity);
        assert_eq!(
            coding(&req(&[(ae.clone(), "identity"), (ae, "BR")])),
            Coding::Brotli
        );
    }

    #[test]
    fn if_none_match_is_a_weak_comparison_over_a_list() {
        let v = Version {
            changed: 42,
            out_of_touch: false,
        };
        let tag = HeaderValue::from_str(&v.etag()).unwrap();
        let inm = header::IF_NONE_MATCH;
        assert!(holds(&req(&[(inm.clone(), "W/\"42\"")]), &tag));
        assert!(holds(&req(&[(inm.clone(), "\"42\"")]), &tag));
        assert!(holds(&req(&[(inm.clone(), "W/\"7\", W/\"42\"")]), &tag));
        assert!(holds(&req(&[(inm.clone(), "*")]), &tag));
        assert!(!holds(&req(&[(inm.clone(), "W/\"43\"")]), &tag));
        assert!(!holds(&req(&[(inm, "W/\"42-x\"")]), &tag));
        assert!(!holds(&req(&[]), &tag));
    }

    #[test]
    fn kept_bodies_decompress_to_the_page() {
        let page = "<p>Perolehan suara</p>".repeat(200);
        let r = Rendered::new(
            Version {
                changed: 1,
                out_of_touch: false,
            },
            "PPWP".into(),
            "text/html; charset=utf-8",
            page.clone(),
        );
        let gz = r.body(Coding::Gzip);
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out)
            .unwrap();
        assert_eq!(out, page);
        let br = r.body(Coding::Brotli);
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut out).unwrap();
        assert_eq!(out, page.as_bytes());
        assert!(br.len() < page.len() / 4 && gz.len() < page.len() / 4);
    }
}
