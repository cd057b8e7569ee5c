//! The live stream, `GET /v1/stream` (Server-Sent Events): a `learner` event per learner-state
//! change, and an `intervention` event after it when the policies decided on one.
//!
//! The handler checks who may follow what, then subscribes to the hub's fan-out
//! ([`crate::live::fanout`]) with exactly what the stream shows (the tenant, a group or a
//! learner), so the stream only wakes for its own updates. What it sends of an update is
//! rendered once per visibility and shared with every other stream that shows it.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Action, Caller};
use crate::learners::{denied, learner_view};
use crate::live::LearnerUpdate;
use crate::live::fanout::{Delivery, Follow, Published};
use crate::privacy::TenantState;
use crate::problem::{ApiError, Query};
use crate::state::AppState;
use crate::views::intervention_view;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StreamFilter {
    /// Only this learner.
    learner: Option<String>,
    /// Only learners working in this group (class).
    group: Option<String>,
}

/// Server-Sent Events: one `learner` event per learner-state change, as it happens.
#[utoipa::path(
    get, path = "/v1/stream", tag = "learners",
    params(StreamFilter),
    responses((status = 200, description = "text/event-stream of `learner` events (data: {seq, state})", content_type = "text/event-stream", body = String)),
    security(("api_key" = []))
)]
async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<StreamFilter>,
    headers: axum::http::HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Action::ReadLearners)?;
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request("Last-Event-ID", "must be an event id this stream sent")
                })?,
        ),
    };
    let privacy = state.privacy.tenant(&state.storage, caller.tenant).await?;
    let cognitive = privacy.sees_cognitive_data(caller.role);
    let learner_keys = filter
        .learner
        .as_deref()
        .map(|id| privacy.learner_keys(id))
        .unwrap_or_default();
    state.audit.access(
        &caller,
        "stream.open",
        learner_keys
            .first()
            .map(|_| privacy.consent_key(filter.learner.as_deref().unwrap_or_default())),
        serde_json::json!({"group": filter.group, "cognitive_data": cognitive}),
    );
    if let Some(group) = &filter.group
        && !caller.sees_any(std::iter::once(group))
    {
        return Err(denied(&state, &caller, group.clone()));
    }
    // A key scoped to groups may follow one learner only if it may see them: a learner seen in
    // none of its groups (or not seen at all) is refused, as `GET /v1/learners/{id}` refuses.
    if caller.groups.is_some() && !learner_keys.is_empty() {
        let groups: Vec<String> = learner_keys
            .iter()
            .flat_map(|k| state.hub.groups_of(caller.tenant, k))
            .collect();
        if !caller.sees_any(groups.iter()) {
            return Err(denied(
                &state,
                &caller,
                privacy.consent_key(filter.learner.as_deref().unwrap_or_default()),
            ));
        }
    }
    // The narrowest topic the filter names: a learner in a group is followed as the learner,
    // and the group is checked per update.
    let follow = match (&filter.learner, &filter.group) {
        (Some(_), _) => Follow::Learner(learner_keys.clone()),
        (None, Some(group)) => Follow::Group(group.clone()),
        (None, None) => Follow::Everyone,
    };
    let subscription = state.hub.subscribe(caller.tenant, follow);
    // Resuming (`Last-Event-ID`): the interventions decided since, from the hub's recent
    // decisions, before the live events. Learner updates are not replayed: the next one carries
    // the whole state anyway.
    let mut backlog: Vec<Event> = Vec::new();
    let mut resumed_through = i64::MIN;
    if let Some(last) = last_event_id {
        let mut missed: Vec<_> = state
            .hub
            .recent_interventions(caller.tenant, &learner_keys, usize::MAX)
            .into_iter()
            .filter(|(seq, d, _)| {
                let groups = state.hub.groups_of(caller.tenant, &d.learner);
                *seq > last
                    && !privacy.restricted(&d.learner)
                    && caller.sees_any(groups.iter())
                    && filter.group.as_ref().is_none_or(|g| groups.contains(g))
            })
            .collect();
        missed.reverse();
        for (seq, d, _) in missed {
            resumed_through = resumed_through.max(seq);
            backlog.push(
                Event::default()
                    .event("intervention")
                    .id(seq.to_string())
                    .json_data(intervention_view(seq, &d, cognitive))
                    .unwrap_or_else(|_| Event::default().comment("unserialisable")),
            );
        }
    }
    let viewer = Viewer {
        caller,
        privacy,
        group: filter.group,
        cognitive,
        resumed_through,
    };
    metrics::gauge!("learnpulse_stream_subscribers").increment(1.0);
    let guard = SubscriberGauge;
    let shutdown = state.shutdown.clone();
    let events = futures_util::stream::unfold(
        (subscription, shutdown, viewer, guard),
        |(mut subscription, mut shutdown, viewer, guard)| async move {
            loop {
                let delivery = tokio::select! {
                    d = subscription.recv() => d?,
                    // The server is shutting down: end the stream so that graceful shutdown
                    // does not wait for subscribers to hang up.
                    _ = shutdown.wait_for(|stop| *stop) => return None,
                };
                let events = viewer.events(delivery);
                if !events.is_empty() {
                    return Some((events, (subscription, shutdown, viewer, guard)));
                }
            }
        },
    )
    .flat_map(|events| futures_util::stream::iter(events.into_iter().map(Ok)));
    let events = futures_util::stream::iter(backlog.into_iter().map(Ok)).chain(events);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Who is watching a stream, and so which updates it shows and how.
struct Viewer {
    caller: Caller,
    privacy: Arc<TenantState>,
    /// The group the filter names (a learner stream may name one too).
    group: Option<String>,
    cognitive: bool,
    /// Interventions through here were sent from the backlog when the stream resumed.
    resumed_through: i64,
}

/// The shared renderings of an update ([`Published::rendered`]'s slots).
const LEARNER: usize = 0;
const INTERVENTION: usize = 2;

impl Viewer {
    fn shows(&self, update: &LearnerUpdate) -> bool {
        update.seq > self.resumed_through
            && self
                .group
                .as_ref()
                .is_none_or(|g| update.state.groups.contains(g))
            && self.caller.sees_any(update.state.groups.iter())
            && !self.privacy.restricted(&update.state.learner)
    }

    /// The events of one delivery: per update shown, `learner`, then `intervention` if any.
    fn events(&self, delivery: Delivery) -> Vec<Event> {
        let updates = match delivery {
            Delivery::Updates(updates) => updates,
            Delivery::Lagged(n) => {
                return vec![Event::default().event("lagged").data(n.to_string())];
            }
        };
        let mut events = Vec::with_capacity(updates.len());
        for published in updates.iter().filter(|p| self.shows(&p.update)) {
            let id = published.update.seq.to_string();
            events.push(
                Event::default()
                    .event("learner")
                    .id(id.clone())
                    .data(self.rendered_learner(published)),
            );
            if published.update.intervention.is_some() {
                events.push(
                    Event::default()
                        .event("intervention")
                        .id(id)
                        .data(self.rendered_intervention(published)),
                );
            }
        }
        events
    }

    fn rendered_learner<'p>(&self, published: &'p Published) -> &'p str {
        let cognitive = self.cognitive;
        published.rendered(LEARNER + usize::from(cognitive), |update| {
            serde_json::json!({
                "tenant": update.tenant,
                "seq": update.seq,
                "state": learner_view(&update.state, cognitive),
            })
            .to_string()
        })
    }

    fn rendered_intervention<'p>(&self, published: &'p Published) -> &'p str {
        let cognitive = self.cognitive;
        published.rendered(INTERVENTION + usize::from(cognitive), |update| {
            let decision = update.intervention.as_ref().expect("asked only with one");
            intervention_view(update.seq, decision, cognitive).to_string()
        })
    }
}

/// Decrements the subscriber gauge when a stream ends.
struct SubscriberGauge;

impl Drop for SubscriberGauge {
    fn drop(&mut self) {
        metrics::gauge!("learnpulse_stream_subscribers").decrement(1.0);
    }
}
