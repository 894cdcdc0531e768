//! Ridge-penalised logistic regression fitted by Newton's method (IRLS), with a Cholesky solver.

/// A dense row-major design matrix: `rows × cols`.
#[derive(Debug, Clone)]
pub(crate) struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// Solves `a x = b` for a symmetric positive definite `a` (n × n, row-major) by Cholesky
/// factorisation `a = L Lᵀ`. Returns `None` when `a` is not positive definite.
pub(crate) fn cholesky_solve(matrix: &[f64], n: usize, rhs: &[f64]) -> Option<Vec<f64>> {
    let mut lower = vec![0.0; n * n];
    for row in 0..n {
        for col in 0..=row {
            let mut sum = matrix[row * n + col];
            for k in 0..col {
                sum -= lower[row * n + k] * lower[col * n + k];
            }
            if row == col {
                if sum <= 0.0 || !sum.is_finite() {
                    return None;
                }
                lower[row * n + row] = sum.sqrt();
            } else {
                lower[row * n + col] = sum / lower[col * n + col];
            }
        }
    }
    // Forward substitution: L z = rhs.
    let mut forward = vec![0.0; n];
    for row in 0..n {
        let mut sum = rhs[row];
        for k in 0..row {
            sum -= lower[row * n + k] * forward[k];
        }
        forward[row] = sum / lower[row * n + row];
    }
    // Back substitution: Lᵀ solution = z.
    let mut solution = vec![0.0; n];
    for row in (0..n).rev() {
        let mut sum = forward[row];
        for k in row + 1..n {
            sum -= lower[k * n + row] * solution[k];
        }
        solution[row] = sum / lower[row * n + row];
    }
    Some(solution)
}

/// The result of a logistic regression fit.
#[derive(Debug, Clone)]
pub(crate) struct LogitFit {
    /// Coefficients, one per design column (column 0 is normally the intercept).
    pub coef: Vec<f64>,
    /// Newton steps taken.
    pub iterations: usize,
    /// Whether the largest coefficient change of an accepted step fell below the tolerance. False
    /// when the iterations ran out, the normal equations could not be solved, or step halving
    /// found no step that keeps the penalised log-likelihood from decreasing; the coefficients
    /// are then the last accepted estimate.
    pub converged: bool,
}

fn sigmoid(eta: f64) -> f64 {
    if eta >= 0.0 {
        1.0 / (1.0 + (-eta).exp())
    } else {
        let e = eta.exp();
        e / (1.0 + e)
    }
}

/// Maximises `Σ log-likelihood − ridge/2 · Σ_{j≥1} β_j²` (column 0, the intercept, is not
/// penalised) by Newton–Raphson: `β ← β + (XᵀWX + ridge·I')⁻¹ (Xᵀ(y − p) − ridge·β')`.
/// Step halving keeps the penalised log-likelihood from decreasing.
pub(crate) fn fit_logistic(x: &Matrix, y: &[bool], ridge: f64) -> LogitFit {
    const MAX_ITER: usize = 100;
    const TOL: f64 = 1e-9;
    let p = x.cols;
    let mut beta = vec![0.0; p];
    let objective = |beta: &[f64]| -> f64 {
        let mut ll = 0.0;
        for (i, &yi) in y.iter().enumerate().take(x.rows) {
            let eta: f64 = x.row(i).iter().zip(beta).map(|(a, b)| a * b).sum();
            // log(1 + e^eta) computed stably.
            let log1pexp = if eta > 0.0 {
                eta + (-eta).exp().ln_1p()
            } else {
                eta.exp().ln_1p()
            };
            ll += if yi { eta - log1pexp } else { -log1pexp };
        }
        ll - 0.5 * ridge * beta.iter().skip(1).map(|b| b * b).sum::<f64>()
    };
    let mut current = objective(&beta);
    let mut iterations = 0;
    let mut converged = false;
    while iterations < MAX_ITER {
        iterations += 1;
        let mut hess = vec![0.0; p * p];
        let mut grad = vec![0.0; p];
        for (i, &yi) in y.iter().enumerate().take(x.rows) {
            let row = x.row(i);
            let eta: f64 = row.iter().zip(&beta).map(|(a, b)| a * b).sum();
            let mu = sigmoid(eta);
            let w = (mu * (1.0 - mu)).max(1e-12);
            let resid = f64::from(u8::from(yi)) - mu;
            for j in 0..p {
                grad[j] += row[j] * resid;
                let wj = w * row[j];
                if wj != 0.0 {
                    for k in 0..=j {
                        hess[j * p + k] += wj * row[k];
                    }
                }
            }
        }
        for j in 0..p {
            for k in 0..j {
                hess[k * p + j] = hess[j * p + k];
            }
        }
        for j in 1..p {
            hess[j * p + j] += ridge;
            grad[j] -= ridge * beta[j];
        }
        let step = cholesky_solve(&hess, p, &grad).or_else(|| {
            // Only reachable when the intercept alone is unidentified; a tiny jitter restores it.
            for j in 0..p {
                hess[j * p + j] += 1e-8;
            }
            cholesky_solve(&hess, p, &grad)
        });
        let Some(step) = step else { break };
        let mut scale = 1.0;
        let mut accepted = false;
        for _ in 0..30 {
            let trial: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + scale * s).collect();
            let value = objective(&trial);
            if value >= current - 1e-12 * current.abs().max(1.0) {
                beta = trial;
                current = value;
                accepted = true;
                break;
            }
            scale /= 2.0;
        }
        // Converged only when an accepted step was below the tolerance, or when the full Newton
        // step itself was (at the optimum, where rounding can keep any step from raising the
        // objective). Step halving that found no acceptable step is a failure, however small
        // the last halved step was.
        let largest = |scale: f64| step.iter().map(|s| (s * scale).abs()).fold(0.0, f64::max);
        if !accepted {
            converged = largest(1.0) < TOL;
            break;
        }
        if largest(scale) < TOL {
            converged = true;
            break;
        }
    }
    LogitFit {
        coef: beta,
        iterations,
        converged,
    }
}

/// The linear predictor `x_i · β` of every row: the logit of the fitted probability.
pub(crate) fn linear_predictor(x: &Matrix, beta: &[f64]) -> Vec<f64> {
    (0..x.rows)
        .map(|i| x.row(i).iter().zip(beta).map(|(a, b)| a * b).sum())
        .collect()
}

/// The fitted probability for a linear predictor.
pub(crate) fn probability(eta: f64) -> f64 {
    sigmoid(eta)
}
