#include "hpsweep/reducer/cells.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

const CellPoint& Cell::best() const {
  return *std::min_element(points.begin(), points.end(), [](auto& a, auto& b) { return a.loss < b.loss; });
}

std::vector<Cell> collect_cells(const SweepLog& log) {
  std::map<std::tuple<std::string, double, double>, Cell> cells;
  for (const auto& [id, r] : log.latest_by_id()) {
    const TrialPoint& p = r->trial.point;
    Cell& c = cells[{p.variant, p.params, p.tokens}];
    c.variant = p.variant;
    c.params = p.params;
    c.tokens = p.tokens;
    if (!r->finished) continue;  // an ingested run that stopped early says little about its optimum
    if (r->outcome.state == TrialState::Done && std::isfinite(r->outcome.smooth_loss))
      c.points.push_back(CellPoint{id, p.lr, p.batch_tokens(), p.wd, r->outcome.smooth_loss, p.batch});
    else if (is_terminal(r->outcome.state))
      ++c.diverged;
  }
  std::vector<Cell> out;
  for (auto& [k, c] : cells) {
    // Deterministic order of points whatever the hash map did.
    std::sort(c.points.begin(), c.points.end(), [](auto& a, auto& b) { return a.id < b.id; });
    if (!c.points.empty()) out.push_back(std::move(c));
  }
  return out;
}

std::string Selection::text() const {
  switch (kind) {
    case SelectKind::Within:
      return "within:" + format_short(eps * 100) + "%";
    case SelectKind::Argmin:
      return "argmin";
    case SelectKind::Bowl:
      return "bowl:" + format_short(eps * 100) + "%";
  }
  return "?";
}

Selection parse_selection(const std::string& text) {
  Selection s;
  const auto colon = text.find(':');
  const std::string kind = to_lower(text.substr(0, colon));
  if (kind == "within")
    s.kind = SelectKind::Within;
  else if (kind == "argmin")
    s.kind = SelectKind::Argmin;
  else if (kind == "bowl")
    s.kind = SelectKind::Bowl;
  else
    throw InputError("--select: unknown method '" + kind + "' (use within:EPS, argmin or bowl[:EPS])");
  if (colon != std::string::npos) {
    std::string v = trim(text.substr(colon + 1));
    const bool percent = !v.empty() && v.back() == '%';
    if (percent) v.pop_back();
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(x > 0)) throw InputError("--select: malformed tolerance '" + text + "'");
    s.eps = percent ? x / 100.0 : x;
  }
  return s;
}

// A convex quadratic fitted to the loss in log coordinates around a cell's minimum.
struct Quadratic {
  int dims = 0;
  Eigen::VectorXd coef;  // 1, x_i, x_i*x_j (i <= j)
  Eigen::MatrixXd cov;   // covariance of coef
  Eigen::VectorXd center;
  double value(const Eigen::VectorXd& x) const {
    const Eigen::VectorXd d = x - center;
    double v = coef(0);
    int k = 1;
    for (int i = 0; i < dims; ++i) v += coef(k++) * d(i);
    for (int i = 0; i < dims; ++i)
      for (int j = i; j < dims; ++j) v += coef(k++) * d(i) * d(j);
    return v;
  }
  Eigen::MatrixXd hessian(const Eigen::VectorXd& c) const {
    Eigen::MatrixXd h(dims, dims);
    int k = 1 + dims;
    for (int i = 0; i < dims; ++i)
      for (int j = i; j < dims; ++j) {
        const double a = c(k++);
        h(i, j) = h(j, i) = (i == j ? 2 * a : a);
      }
    return h;
  }
  Eigen::VectorXd minimum(const Eigen::VectorXd& c) const {
    const Eigen::MatrixXd h = hessian(c);
    return center - h.ldlt().solve(c.segment(1, dims));
  }
  bool convex() const {
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(hessian(coef));
    return es.eigenvalues().minCoeff() > 0;
  }
};

namespace {

Eigen::VectorXd coords(const CellPoint& p, int dims) {
  Eigen::VectorXd x(dims);
  x(0) = std::log(p.lr);
  x(1) = std::log(p.batch_tokens);
  if (dims == 3) x(2) = std::log(p.wd);
  return x;
}

// Least squares over the points in a window (in log coordinates) around the measured minimum.
// The window, not a loss band, picks the points: choosing the lowest losses would prefer points
// with favourable noise and bend the fitted bowl. It widens until every axis has 4+ values.
bool fit_quadratic(const std::vector<CellPoint>& pts, int dims, Quadratic& q) {
  const int nfeat = 1 + dims + dims * (dims + 1) / 2;
  const CellPoint& best = *std::min_element(pts.begin(), pts.end(), [](auto& a, auto& b) { return a.loss < b.loss; });
  const Eigen::VectorXd c0 = coords(best, dims);
  std::vector<CellPoint> sorted;
  for (double w : {1.0, 1.5, 2.0, 3.0, 4.0, 1e9}) {
    sorted.clear();
    for (const auto& p : pts)
      if (((coords(p, dims) - c0).cwiseAbs().array() <= w + 1e-9).all()) sorted.push_back(p);
    bool spread = true;
    for (int d = 0; d < dims; ++d) {
      std::set<double> values;
      for (const auto& p : sorted) values.insert(coords(p, dims)(d));
      spread = spread && values.size() >= 4;
    }
    if (sorted.size() >= static_cast<std::size_t>(3 * nfeat) && spread) break;
  }
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.loss < b.loss; });
  const std::size_t n = sorted.size();
  if (n < static_cast<std::size_t>(nfeat + 2)) return false;
  q.dims = dims;
  q.center = coords(sorted.front(), dims);
  Eigen::MatrixXd X(n, nfeat);
  Eigen::VectorXd y(n);
  for (std::size_t r = 0; r < n; ++r) {
    const Eigen::VectorXd d = coords(sorted[r], dims) - q.center;
    int k = 0;
    X(r, k++) = 1;
    for (int i = 0; i < dims; ++i) X(r, k++) = d(i);
    for (int i = 0; i < dims; ++i)
      for (int j = i; j < dims; ++j) X(r, k++) = d(i) * d(j);
    y(r) = sorted[r].loss;
  }
  Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(X);
  if (qr.rank() < nfeat) return false;
  q.coef = qr.solve(y);
  const double dof = static_cast<double>(n) - nfeat;
  const double s2 = (y - X * q.coef).squaredNorm() / std::max(1.0, dof);
  q.cov = s2 * (X.transpose() * X).inverse();
  return true;
}

void flag_edges(const Cell& cell, const CellPoint& best, CellOptimum& out) {
  std::set<double> lrs, bs, wds;
  for (const auto& p : cell.points) {
    lrs.insert(p.lr);
    bs.insert(p.batch_tokens);
    wds.insert(p.wd);
  }
  auto check = [&](const std::set<double>& values, double v, const char* name) {
    if (values.size() < 2) return;
    if (v == *values.begin())
      out.edges.push_back(std::string(name) + " at the lowest swept value: extend the grid downwards");
    if (v == *values.rbegin())
      out.edges.push_back(std::string(name) + " at the highest swept value: extend the grid upwards");
  };
  check(lrs, best.lr, "lr");
  check(bs, best.batch_tokens, "batch");
  check(wds, best.wd, "wd");
}

}  // namespace

bool select_optimum(const Cell& cell, const Selection& sel, CellOptimum& out, std::string& reason) {
  if (cell.points.size() < 3) {
    reason = std::to_string(cell.points.size()) + " valid points (need at least 3)";
    return false;
  }
  out = CellOptimum{};
  out.params = cell.params;
  out.tokens = cell.tokens;
  const CellPoint& best = cell.best();
  out.lr = best.lr;
  out.batch_tokens = best.batch_tokens;
  out.wd = best.wd;
  out.loss = best.loss;
  flag_edges(cell, best, out);
  // Measured plateau: extent of the points within eps of the minimum.
  out.plateau_lr_lo = out.plateau_lr_hi = best.lr;
  out.plateau_b_lo = out.plateau_b_hi = best.batch_tokens;
  for (const auto& p : cell.points)
    if (p.loss / best.loss - 1.0 < sel.eps) {
      out.plateau_lr_lo = std::min(out.plateau_lr_lo, p.lr);
      out.plateau_lr_hi = std::max(out.plateau_lr_hi, p.lr);
      out.plateau_b_lo = std::min(out.plateau_b_lo, p.batch_tokens);
      out.plateau_b_hi = std::max(out.plateau_b_hi, p.batch_tokens);
    }

  if (sel.kind == SelectKind::Argmin) {
    out.selected = {best};
    return true;
  }
  if (sel.kind == SelectKind::Within) {
    for (const auto& p : cell.points)
      if (std::fabs(p.loss / best.loss - 1.0) < sel.eps) out.selected.push_back(p);
    return true;
  }
  // Bowl: at the best weight decay when wd was swept too sparsely for a third dimension.
  std::set<double> wds;
  for (const auto& p : cell.points) wds.insert(p.wd);
  int dims = wds.size() >= 3 && *wds.begin() > 0 ? 3 : 2;
  std::vector<CellPoint> pts;
  for (const auto& p : cell.points)
    if (dims == 3 || p.wd == best.wd) pts.push_back(p);
  Quadratic q;
  if (!fit_quadratic(pts, dims, q) || !q.convex()) {
    out.note = "bowl fit not convex or too few points: used the argmin";
    out.selected = {best};
    return true;
  }
  const Eigen::VectorXd xmin = q.minimum(q.coef);
  // Delta method for the optimum's standard errors (finite differences in the coefficients).
  const int m = static_cast<int>(q.coef.size());
  Eigen::MatrixXd J(dims, m);
  for (int k = 0; k < m; ++k) {
    Eigen::VectorXd c = q.coef;
    const double h = 1e-6 * std::max(1.0, std::fabs(c(k)));
    c(k) += h;
    J.col(k) = (q.minimum(c) - xmin) / h;
  }
  const Eigen::MatrixXd cov = J * q.cov * J.transpose();
  // An optimum outside the swept range is an extrapolation, not a measurement.
  double lo_lr = 1e300, hi_lr = 0, lo_b = 1e300, hi_b = 0;
  for (const auto& p : pts) {
    lo_lr = std::min(lo_lr, p.lr), hi_lr = std::max(hi_lr, p.lr);
    lo_b = std::min(lo_b, p.batch_tokens), hi_b = std::max(hi_b, p.batch_tokens);
  }
  const double lr = std::exp(xmin(0)), b = std::exp(xmin(1));
  if (lr < lo_lr || lr > hi_lr || b < lo_b || b > hi_b) {
    out.note = "bowl minimum outside the swept range: used the argmin";
    out.selected = {best};
    return true;
  }
  out.lr = lr;
  out.batch_tokens = b;
  if (dims == 3) out.wd = std::exp(xmin(2));
  out.loss = q.value(xmin);
  out.lr_sd_log = std::sqrt(std::max(0.0, cov(0, 0)));
  out.batch_sd_log = std::sqrt(std::max(0.0, cov(1, 1)));
  const Eigen::MatrixXd hinv = q.hessian(q.coef).inverse();
  const double dx = std::sqrt(2 * sel.eps * out.loss * hinv(0, 0)), dy = std::sqrt(2 * sel.eps * out.loss * hinv(1, 1));
  out.plateau_lr_lo = lr * std::exp(-dx);
  out.plateau_lr_hi = lr * std::exp(dx);
  out.plateau_b_lo = b * std::exp(-dy);
  out.plateau_b_hi = b * std::exp(dy);
  CellPoint opt = best;
  opt.lr = lr;
  opt.batch_tokens = b;
  opt.wd = out.wd;
  opt.loss = out.loss;
  out.selected = {opt};
  return true;
}

double interpolate_loss(const Cell& cell, double lr, double batch_tokens, std::string& method, bool& in_plateau,
                        double eps) {
  const CellPoint& best = cell.best();
  std::vector<CellPoint> pts;
  for (const auto& p : cell.points)
    if (p.wd == best.wd) pts.push_back(p);
  Eigen::VectorXd x(2);
  x << std::log(lr), std::log(batch_tokens);
  Quadratic q;
  if (fit_quadratic(pts, 2, q) && q.convex()) {
    const Eigen::VectorXd xmin = q.minimum(q.coef);
    const double lmin = q.value(xmin);
    const double v = q.value(x);
    method = "quadratic fit of the cell's landscape";
    in_plateau = v <= lmin * (1 + eps);
    return std::max(v, lmin);
  }
  // Inverse-distance weighting of the 4 nearest measured points in (ln lr, ln B).
  std::vector<std::pair<double, double>> dist;
  for (const auto& p : pts) {
    const double dx = std::log(p.lr) - x(0), dy = std::log(p.batch_tokens) - x(1);
    dist.emplace_back(std::sqrt(dx * dx + dy * dy), p.loss);
  }
  std::sort(dist.begin(), dist.end());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < std::min<std::size_t>(4, dist.size()); ++i) {
    if (dist[i].first < 1e-12) {
      num = dist[i].second;
      den = 1;
      break;
    }
    num += dist[i].second / dist[i].first;
    den += 1 / dist[i].first;
  }
  method = "inverse-distance interpolation of the 4 nearest points";
  const double v = num / den;
  in_plateau = v <= best.loss * (1 + eps);
  return v;
}

}  // namespace hpsweep
