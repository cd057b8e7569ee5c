//! Evaluation metrics for binary predictions.

/// Area under the ROC curve: the probability that a random correct answer got a higher
/// prediction than a random incorrect one (ties count half). `None` when one class is missing.
pub fn auc(predictions: &[f64], outcomes: &[bool]) -> Option<f64> {
    let mut order: Vec<usize> = (0..predictions.len()).collect();
    order.sort_by(|&a, &b| predictions[a].total_cmp(&predictions[b]));
    let positives = outcomes.iter().filter(|o| **o).count() as f64;
    let negatives = outcomes.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Sum of the (tie-averaged) ranks of the positives: the Mann-Whitney U statistic.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && predictions[order[j + 1]] == predictions[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += order[i..=j].iter().filter(|&&k| outcomes[k]).count() as f64 * average_rank;
        i = j + 1;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

pub fn rmse(predictions: &[f64], outcomes: &[bool]) -> f64 {
    let sum: f64 = predictions
        .iter()
        .zip(outcomes)
        .map(|(p, &o)| (p - f64::from(u8::from(o))).powi(2))
        .sum();
    (sum / predictions.len().max(1) as f64).sqrt()
}

/// Mean negative log-likelihood (log loss).
pub fn log_loss(predictions: &[f64], outcomes: &[bool]) -> f64 {
    let sum: f64 = predictions
        .iter()
        .zip(outcomes)
        .map(|(p, &o)| {
            let p = p.clamp(1e-12, 1.0 - 1e-12);
            if o { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    sum / predictions.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_random_and_tied_predictions() {
        assert_eq!(
            auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
            Some(1.0)
        );
        assert_eq!(
            auc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]),
            Some(0.0)
        );
        assert_eq!(
            auc(&[0.5, 0.5, 0.5, 0.5], &[false, true, false, true]),
            Some(0.5)
        );
        assert_eq!(auc(&[0.3, 0.6], &[true, true]), None);
        // One inversion out of four pairs.
        assert_eq!(
            auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]),
            Some(0.75)
        );
    }

    #[test]
    fn rmse_and_log_loss() {
        assert!((rmse(&[1.0, 0.0], &[true, false])).abs() < 1e-12);
        assert!((rmse(&[0.5, 0.5], &[true, false]) - 0.5).abs() < 1e-12);
        assert!((log_loss(&[0.5], &[true]) - std::f64::consts::LN_2).abs() < 1e-12);
    }
}
