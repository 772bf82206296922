//! The sender-constraint checks of an accepted token: certificate binding
//! (RFC 8705), DPoP binding and proof (RFC 9449), the replay record.

use super::*;

/// What the sender checks need besides the request: the client
/// certificate's digest and where seen DPoP proofs are remembered.
pub(super) struct Sender<'a> {
    pub(super) peer_cert: Option<&'a str>,
    pub(super) shared: Option<&'a dyn SharedData>,
    pub(super) local: Option<&'a RefCell<ReplayCache>>,
    /// The filter's one replay record.
    pub(super) replay: Option<&'a ReplaySettings>,
    /// The proof this request recorded already (see
    /// [`Evaluator::recorded_proof`]).
    pub(super) recorded: &'a Cell<Option<[u8; 32]>>,
}

/// The sender-constraint checks of an accepted token: its certificate
/// binding (RFC 8705), then its DPoP binding and proof (RFC 9449). Ok: the
/// binding that was checked (for the decision log), if any.
pub(super) fn check_sender(
    p: &Provider,
    v: &Verified<'_>,
    req: &RequestView,
    now: u64,
    verify: VerifyFn<'_>,
    sender: &Sender<'_>,
) -> Result<Option<&'static str>, AuthError> {
    binding::check_cert_binding(&v.claims, p.cert_binding, sender.peer_cert)?;
    let mtls =
        p.cert_binding != BindingMode::Off && matches!(binding::bound_x5t(&v.claims), Ok(Some(_)));
    let Some(d) = &p.dpop else {
        return Ok(mtls.then_some("mtls"));
    };
    // The DPoP scheme when the token came (also) as `Authorization: DPoP`.
    let dpop_header = |i: &usize| p.locations.get(*i).is_some_and(dpop::is_dpop_location);
    let scheme = if v.found.locations.iter().any(dpop_header) {
        Scheme::Dpop
    } else {
        Scheme::Bearer
    };
    let mut proofs = req.header_all("dpop");
    let proof_text = proofs.next();
    if proofs.next().is_some() {
        return Err(AuthError::DpopMalformed);
    }
    let checked = match (scheme, proof_text) {
        (Scheme::Dpop, None) => return Err(AuthError::DpopMissing),
        (Scheme::Dpop, Some(text)) => {
            let authority = req.header(":authority").unwrap_or("");
            let scheme_name = req.header(":scheme").unwrap_or("http");
            let htu = dpop::target_uri(
                scheme_name,
                authority,
                req.path(),
                d.public_base_url.as_deref(),
            );
            let ctx = ProofContext {
                method: req.header(":method").unwrap_or(""),
                htu: &htu,
                access_token: &v.found.token,
                now,
            };
            Some(dpop::check_proof(text, &d.policy, &ctx, verify)?)
        }
        // Bearer semantics: a proof beside a bearer token is not looked at.
        (Scheme::Bearer, _) => None,
    };
    binding::check_dpop_binding(&v.claims, d.policy.mode, scheme, checked.as_ref())?;
    let Some(proof) = checked else {
        return Ok(mtls.then_some("mtls"));
    };
    // Remembered until the proof could no longer pass the iat check of any
    // provider (the record is the filter's: the longest `max_age` counts).
    let max_age = sender
        .replay
        .map_or(d.policy.max_age_secs, |r| r.max_age_secs)
        .max(d.policy.max_age_secs);
    let forget_at = proof.iat.saturating_add(max_age).saturating_add(1);
    let id = replay::replay_id(&proof);
    let verdict = if sender.recorded.get() == Some(id) {
        // Recorded by this request for another provider.
        ReplayVerdict::Fresh
    } else {
        let verdict = match (sender.replay, sender.shared, sender.local) {
            (Some(r), Some(store), _) if r.scope == ReplayScope::Shared => {
                replay::record_shared(store, &proof, forget_at, now, r)
            }
            (Some(_), _, Some(local)) => match local.try_borrow_mut() {
                Ok(mut cache) => cache.check_and_record(&proof, forget_at, now),
                Err(_) => ReplayVerdict::Full,
            },
            _ => ReplayVerdict::Unavailable,
        };
        if verdict == ReplayVerdict::Fresh {
            sender.recorded.set(Some(id));
        }
        verdict
    };
    match verdict {
        ReplayVerdict::Fresh => Ok(Some(if mtls { "dpop+mtls" } else { "dpop" })),
        ReplayVerdict::Replayed => Err(AuthError::DpopReplay),
        ReplayVerdict::Full | ReplayVerdict::Unavailable => Err(AuthError::DpopReplayFull),
    }
}
