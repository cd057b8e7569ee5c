//! Applies the changes other processes announce (`storage::changes`) to this process's caches:
//! API keys, each tenant's privacy state, intervention policies, erased learners' engines, and
//! which learners the newest snapshot keeps.
//! (This process's own changes are already in place where they were made.)

use crate::state::AppState;
use crate::storage::Change;
use tokio::sync::broadcast::error::RecvError;

/// Runs until shutdown.
pub async fn run(state: AppState) {
    let mut changes = state.storage.changes();
    let mut shutdown = state.shutdown.clone();
    loop {
        let received = tokio::select! {
            received = changes.recv() => received,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match received {
            Ok(change) => apply(&state, change).await,
            // Announcements were missed: nothing cached can be trusted.
            Err(RecvError::Lagged(_)) => apply(&state, Change::Everything).await,
            Err(RecvError::Closed) => return,
        }
    }
}

async fn apply(state: &AppState, change: Change) {
    match change {
        Change::Key(id) => state.keys.forget_local(&id),
        Change::Privacy(tenant) => state.privacy.forget_tenant(tenant),
        Change::Policies(tenant) => {
            if let Err(e) =
                crate::interventions::load_tenant(&state.storage, &state.hub, tenant).await
            {
                tracing::warn!(tenant, error = %e, "cannot reload intervention policies");
            }
        }
        Change::Erased(tenant, learners) => {
            if let Err(e) =
                crate::snapshot::erase(&state.storage, &state.hub, tenant, &learners).await
            {
                tracing::warn!(tenant, error = %e, "cannot scrub erased learners from the snapshot");
            }
            state.privacy.forget_tenant(tenant);
        }
        Change::Snapshot(covers) => state.hub.snapshot_saved(covers),
        Change::Everything => {
            state.keys.clear_local();
            state.privacy.clear();
            if let Err(e) = crate::snapshot::learn_latest(&state.storage, &state.hub).await {
                tracing::warn!(error = %e, "cannot read the newest snapshot's point");
            }
            if let Err(e) = crate::interventions::load_all(&state.storage, &state.hub).await {
                tracing::warn!(error = %e, "cannot reload intervention policies");
            }
        }
    }
}
