//! Property: however many analysts' queries race, a differential-privacy budget is never
//! overspent, and what the ledger records is exactly what was granted. On every backend.

mod common;

use common::Backend;
use learnpulse_server::storage::{PrivacyStore, SpendError};
use proptest::prelude::*;
use std::sync::Arc;

/// Races `spends` against a budget of `total` on `backend`; checks what was granted.
fn race(backend: Backend, total: f64, spends: &[f64]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let mut config = learnpulse_server::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    if backend == Backend::Postgres {
        config.storage.url = Some(common::postgres_url(dir.path()));
    }
    let storage = Arc::new(
        runtime
            .block_on(learnpulse_server::storage::open(&config))
            .unwrap(),
    );
    let granted: Vec<f64> = runtime.block_on(async {
        let tasks: Vec<_> = spends
            .iter()
            .map(|&epsilon| {
                let storage = storage.clone();
                tokio::spawn(async move {
                    match storage
                        .spend_budget(1, "lpk_analyst".into(), epsilon, total, "{}".into())
                        .await
                    {
                        Ok(remaining) => {
                            assert!(remaining >= -1e-9, "remaining {remaining}");
                            Some(epsilon)
                        }
                        Err(SpendError::Exceeded { spent, total }) => {
                            assert!(spent <= total + 1e-9);
                            None
                        }
                        Err(SpendError::Store(e)) => panic!("{e}"),
                    }
                })
            })
            .collect();
        let mut granted = Vec::new();
        for t in tasks {
            granted.extend(t.await.unwrap());
        }
        granted
    });
    let sum: f64 = granted.iter().sum();
    prop_assert!(sum <= total + 1e-9, "granted {sum} of {total}");
    let spent = runtime
        .block_on(storage.budget_spent(1, "lpk_analyst".into()))
        .unwrap();
    prop_assert!((spent - sum).abs() < 1e-9);
    let ledger = runtime.block_on(storage.ledger(1, None)).unwrap();
    prop_assert_eq!(ledger.len(), granted.len());
    // Whatever was refused would indeed have overspent at the moment it was refused: the
    // smallest refused spend does not fit in what is left.
    let smallest_refused = spends
        .iter()
        .copied()
        .filter(|e| !granted.contains(e))
        .fold(f64::INFINITY, f64::min);
    prop_assert!(smallest_refused == f64::INFINITY || spent + smallest_refused > total - 1e-9);
    runtime.block_on(storage.shutdown());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn concurrent_spends_never_take_a_budget_below_zero_on_sqlite(
        total in 0.1f64..5.0,
        spends in proptest::collection::vec(0.01f64..1.5, 2..40),
    ) {
        race(Backend::Sqlite, total, &spends)?;
    }

    #[test]
    fn concurrent_spends_never_take_a_budget_below_zero_on_postgres(
        total in 0.1f64..5.0,
        spends in proptest::collection::vec(0.01f64..1.5, 2..40),
    ) {
        race(Backend::Postgres, total, &spends)?;
    }
}
