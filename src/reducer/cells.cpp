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
    case SelectKind::Asym:
      return "asym:" + format_short(eps * 100) + "%";
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
  else if (kind == "asym")
    s.kind = SelectKind::Asym;
  else
    throw InputError("--select: unknown method '" + kind + "' (use asym[:EPS], within:EPS, argmin or bowl[:EPS])");
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
  if (dims >= 2) x(1) = std::log(p.batch_tokens);
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

// ---- asymmetric bowl ----

double AsymmetricBowl::value(double x, double y) const {
  const double u = x - x0, v = y - y0;
  return c + ((u < 0 ? qx_lo : qx_hi) + (u < 0 ? kx_lo : kx_hi) * u) * u * u + (v < 0 ? qy_lo : qy_hi) * v * v +
         r * u * v;
}

namespace {

// Loss rise (relative to the minimum) at the edge of the fitting window: far enough for the
// curvatures to be measured well above the noise, near enough for the bowl to describe the cell.
// With the vertex averaged over the lr models, 6% gave a lower RMSE than 3.5% or 4.5% in
// `hpsweep calibrate` on jobs/example.ini and on the Step Law design, with no more bias. A window
// that grows with the noise (50 residual sds) removed the last +0.035 bias of a cubic landscape at
// 0.5% noise, but on the released Step Law data, where the bowl describes the landscape less well
// far out, it quadrupled the cells' scatter about the laws and moved batch_d_exp from 0.51 to 0.28.
constexpr double kWindowRise = 0.06;
// Distinct grid values each side of the optimum the window keeps when the grid has them.
constexpr int kValuesPerSide = 3;

// Window bound below and above `centre` on one axis: where a rise of kWindowRise * level is
// reached with curvature q_lo / q_hi, widened to hold `per_side` grid values each side.
std::pair<double, double> axis_window(const std::vector<double>& values, double centre, double q_lo, double q_hi,
                                      double level, std::size_t per_side) {
  double lo = centre - (q_lo > 0 ? std::sqrt(kWindowRise * level / q_lo) : 1e9);
  double hi = centre + (q_hi > 0 ? std::sqrt(kWindowRise * level / q_hi) : 1e9);
  std::vector<double> below, above;
  for (double v : values) (v < centre ? below : above).push_back(v);
  std::sort(below.rbegin(), below.rend());
  std::sort(above.begin(), above.end());
  if (below.size() >= per_side) lo = std::min(lo, below[per_side - 1] - 1e-9);
  if (!below.empty() && below.size() < per_side) lo = std::min(lo, below.back() - 1e-9);
  if (above.size() >= per_side) hi = std::max(hi, above[per_side - 1] + 1e-9);
  if (!above.empty() && above.size() < per_side) hi = std::max(hi, above.back() + 1e-9);
  return {lo, hi};
}

struct BowlData {
  std::vector<double> x, y, loss;
};

// Parameter vector: x0, [y0], c, qx_lo, [qx_hi], [qy_lo, [qy_hi], r], [kx_hi] (bracketed:
// asymmetric axes only; the batch terms when B varies; the cubic term above the optimum in
// ln lr in the models that have it). Without the batch axis the bowl is a curve in ln lr alone.
struct BowlModel {
  bool ax = true, ay = true, cx = false, with_y = true;
  double y_fixed = 0;              // ln B of every point when the batch axis is absent
  const LrShape* shape = nullptr;  // one curvature (ax, cx false): the side above follows this shape
  int size() const { return 3 + ax + cx + (with_y ? 3 + ay : 0); }
  AsymmetricBowl unpack(const Eigen::VectorXd& p) const {
    AsymmetricBowl b;
    int k = 0;
    b.x0 = p(k++);
    b.y0 = with_y ? p(k++) : y_fixed;
    b.c = p(k++);
    b.qx_lo = p(k++);
    b.qx_hi = ax ? p(k++) : b.qx_lo;
    if (shape && !ax && !cx) b.qx_hi = shape->upper_ratio * b.qx_lo, b.kx_hi = shape->upper_cubic * b.qx_lo;
    if (with_y) {
      b.qy_lo = p(k++);
      b.qy_hi = ay ? p(k++) : b.qy_lo;
      b.r = p(k++);
    }
    if (cx) b.kx_hi = p(k++);
    b.x_asymmetric = ax, b.y_asymmetric = with_y && ay, b.x_cubic = cx;
    return b;
  }
  Eigen::VectorXd pack(const AsymmetricBowl& b) const {
    Eigen::VectorXd p(size());
    int k = 0;
    p(k++) = b.x0;
    if (with_y) p(k++) = b.y0;
    p(k++) = b.c, p(k++) = ax || shape ? b.qx_lo : 0.5 * (b.qx_lo + b.qx_hi);
    if (ax) p(k++) = b.qx_hi;
    if (with_y) {
      p(k++) = ay ? b.qy_lo : 0.5 * (b.qy_lo + b.qy_hi);
      if (ay) p(k++) = b.qy_hi;
      p(k++) = b.r;
    }
    if (cx) p(k++) = b.kx_hi;
    return p;
  }
  // Residuals (model - loss) and their Jacobian.
  void eval(const BowlData& d, const Eigen::VectorXd& p, Eigen::VectorXd& res, Eigen::MatrixXd* J) const {
    const AsymmetricBowl b = unpack(p);
    const auto n = static_cast<Eigen::Index>(d.x.size());
    res.resize(n);
    if (J) J->setZero(n, size());
    for (Eigen::Index i = 0; i < n; ++i) {
      const double u = d.x[i] - b.x0, v = with_y ? d.y[i] - b.y0 : 0.0;
      const double qx = u < 0 ? b.qx_lo : b.qx_hi, qy = v < 0 ? b.qy_lo : b.qy_hi;
      const double kx = u < 0 ? b.kx_lo : b.kx_hi;
      res(i) = b.c + (qx + kx * u) * u * u + qy * v * v + b.r * u * v - d.loss[i];
      if (!J) continue;
      int k = 0;
      (*J)(i, k++) = -(2 * qx * u + 3 * kx * u * u + b.r * v);
      if (with_y) (*J)(i, k++) = -(2 * qy * v + b.r * u);
      (*J)(i, k++) = 1;
      if (ax) {
        (*J)(i, u < 0 ? k : k + 1) = u * u;
        k += 2;
      } else if (shape && !cx && u >= 0) {
        (*J)(i, k++) = (shape->upper_ratio + shape->upper_cubic * u) * u * u;
      } else {
        (*J)(i, k++) = u * u;
      }
      if (with_y) {
        if (ay) {
          (*J)(i, v < 0 ? k : k + 1) = v * v;
          k += 2;
        } else {
          (*J)(i, k++) = v * v;
        }
        (*J)(i, k++) = u * v;
      }
      if (cx && u >= 0) (*J)(i, k) = u * u * u;
    }
  }
};

// Levenberg-Marquardt from `p`; returns the final sum of squares.
double levenberg_marquardt(const BowlModel& m, const BowlData& d, Eigen::VectorXd& p) {
  Eigen::VectorXd res, trial_res;
  Eigen::MatrixXd J;
  m.eval(d, p, res, &J);
  double rss = res.squaredNorm(), lambda = 1e-3;
  for (int it = 0; it < 100; ++it) {
    const Eigen::MatrixXd JtJ = J.transpose() * J;
    const Eigen::VectorXd g = J.transpose() * res;
    Eigen::MatrixXd A = JtJ;
    A.diagonal() += lambda * JtJ.diagonal().cwiseMax(1e-12);
    const Eigen::VectorXd step = A.ldlt().solve(-g);
    const Eigen::VectorXd next = p + step;
    m.eval(d, next, trial_res, nullptr);
    const double next_rss = trial_res.squaredNorm();
    if (std::isfinite(next_rss) && next_rss <= rss) {
      const bool done = rss - next_rss <= 1e-12 * rss + 1e-300;
      p = next;
      rss = next_rss;
      m.eval(d, p, res, &J);
      lambda = std::max(1e-9, lambda / 3);
      if (done) break;
    } else {
      lambda *= 4;
      if (lambda > 1e12) break;
    }
  }
  return rss;
}

}  // namespace

LrModelAverage average_lr_models(const std::vector<LrModelFit>& fits, const double* family_weight) {
  LrModelAverage a;
  if (fits.empty()) return a;
  std::vector<double> w;
  double wsum = 0;
  if (family_weight) {
    for (const auto& f : fits) w.push_back(family_weight[f.family]), wsum += w.back();
  }
  if (!(wsum > 0)) {  // the cell's own Akaike weights
    w.clear(), wsum = 0;
    double best = fits[0].aicc;
    for (const auto& f : fits) best = std::min(best, f.aicc);
    for (const auto& f : fits) w.push_back(std::exp(-0.5 * (f.aicc - best))), wsum += w.back();
  }
  a.shape = LrShape{0, 0};
  for (std::size_t i = 0; i < fits.size(); ++i) {
    w[i] /= wsum;
    a.x0 += w[i] * fits[i].x0, a.y0 += w[i] * fits[i].y0;
    a.shape.upper_ratio += w[i] * fits[i].shape.upper_ratio;
    a.shape.upper_cubic += w[i] * fits[i].shape.upper_cubic;
    if (fits[i].family != 0) a.cubic_weight += w[i];
  }
  double vx = 0, vy = 0;
  for (std::size_t i = 0; i < fits.size(); ++i) {
    const LrModelFit& f = fits[i];
    vx += w[i] * (f.se_x0 * f.se_x0 + (f.x0 - a.x0) * (f.x0 - a.x0));
    vy += w[i] * (f.se_y0 * f.se_y0 + (f.y0 - a.y0) * (f.y0 - a.y0));
  }
  a.se_x0 = std::sqrt(vx), a.se_y0 = std::sqrt(vy);
  return a;
}

bool fit_asymmetric_bowl(const std::vector<CellPoint>& pts, AsymmetricBowl& out, std::string& reason,
                         const LrShape* borrowed) {
  std::set<double> xs_set, ys_set;
  for (const auto& p : pts) xs_set.insert(std::log(p.lr)), ys_set.insert(std::log(p.batch_tokens));
  // One batch size: the bowl is a curve in ln lr (the transfer fit's lr curves).
  const bool with_y = ys_set.size() > 1;
  if (xs_set.size() < 3 || (with_y && ys_set.size() < 3)) {
    reason = "fewer than 3 distinct lr or batch values";
    return false;
  }
  const std::vector<double> xs(xs_set.begin(), xs_set.end()), ys(ys_set.begin(), ys_set.end());
  // Start: the symmetric quadratic when it is convex, else the argmin with a nominal curvature.
  const CellPoint& best = *std::min_element(pts.begin(), pts.end(), [](auto& a, auto& b) { return a.loss < b.loss; });
  AsymmetricBowl b;
  b.x0 = std::log(best.lr), b.y0 = std::log(best.batch_tokens), b.c = best.loss;
  b.qx_lo = b.qx_hi = b.qy_lo = b.qy_hi = 0.01 * best.loss;
  const int dims = with_y ? 2 : 1;
  Quadratic q;
  if (fit_quadratic(pts, dims, q) && q.convex()) {
    const Eigen::VectorXd v = q.minimum(q.coef);
    const Eigen::MatrixXd h = q.hessian(q.coef);
    if (v(0) >= xs.front() && v(0) <= xs.back() && (!with_y || (v(1) >= ys.front() && v(1) <= ys.back()))) {
      b.x0 = v(0), b.c = q.value(v);
      b.qx_lo = b.qx_hi = 0.5 * h(0, 0);
      if (with_y) {
        b.y0 = v(1);
        b.qy_lo = b.qy_hi = 0.5 * h(1, 1);
        b.r = h(0, 1);
      }
    }
  }
  BowlData d;
  BowlModel m;
  m.with_y = with_y;
  m.y_fixed = ys.front();
  auto convex_bowl = [with_y](const AsymmetricBowl& a) {
    if (!(a.qx_lo > 0 && a.qx_hi > 0)) return false;
    if (!with_y) return true;
    return a.qy_lo > 0 && a.qy_hi > 0 && 4 * std::min(a.qx_lo, a.qx_hi) * std::min(a.qy_lo, a.qy_hi) > a.r * a.r;
  };
  Eigen::VectorXd p;
  double rss = 0;
  // Two passes: the window of the second is set by the first pass's vertex and curvatures.
  for (int pass = 0; pass < 2; ++pass) {
    // A window too narrow for the model's parameters (a steep curve in ln lr alone, say) takes the
    // next grid values on each side until it holds enough points or the whole cell.
    for (std::size_t per_side = kValuesPerSide;; ++per_side) {
      const auto [xlo, xhi] = axis_window(xs, b.x0, b.qx_lo, b.qx_hi, b.c, per_side);
      const auto [ylo, yhi] = with_y ? axis_window(ys, b.y0, b.qy_lo, b.qy_hi, b.c, per_side)
                                     : std::pair<double, double>{ys.front(), ys.front()};
      d = BowlData{};
      std::set<double> below_x, above_x, below_y, above_y;
      for (const auto& pt : pts) {
        const double x = std::log(pt.lr), y = std::log(pt.batch_tokens);
        if (x < xlo || x > xhi || y < ylo || y > yhi) continue;
        d.x.push_back(x), d.y.push_back(y), d.loss.push_back(pt.loss);
        (x < b.x0 ? below_x : above_x).insert(x);
        (y < b.y0 ? below_y : above_y).insert(y);
      }
      // Two curvatures on an axis need two values on each side of the optimum.
      m.ax = below_x.size() >= 2 && above_x.size() >= 2;
      m.ay = with_y && below_y.size() >= 2 && above_y.size() >= 2;
      m.shape = m.ax ? nullptr : borrowed;
      if (d.x.size() >= static_cast<std::size_t>(m.size() + 3) || d.x.size() == pts.size() ||
          per_side > std::max(xs.size(), ys.size()))
        break;
    }
    if (d.x.size() < static_cast<std::size_t>(m.size() + 3)) {
      reason = "too few points around the minimum (" + std::to_string(d.x.size()) + ")";
      return false;
    }
    p = m.pack(b);
    rss = levenberg_marquardt(m, d, p);
    b = m.unpack(p);
    if (!(b.qx_lo > 0 && b.qx_hi > 0 && (!with_y || (b.qy_lo > 0 && b.qy_hi > 0)))) {
      reason = "not convex (a curvature is not positive)";
      return false;
    }
  }
  // Covariance-based standard errors of the vertex for a fitted model (NaN when not identified).
  auto vertex_se = [&](const BowlModel& mm, const Eigen::VectorXd& pp, double rr, double& sx, double& sy) {
    Eigen::VectorXd res;
    Eigen::MatrixXd J;
    mm.eval(d, pp, res, &J);
    const double dof = static_cast<double>(d.x.size()) - mm.size();
    Eigen::FullPivLU<Eigen::MatrixXd> lu(J.transpose() * J);
    if (!lu.isInvertible()) return false;
    const Eigen::MatrixXd cov = (rr / std::max(1.0, dof)) * lu.inverse();
    sx = std::sqrt(std::max(0.0, cov(0, 0)));
    sy = mm.with_y ? std::sqrt(std::max(0.0, cov(1, 1))) : std::numeric_limits<double>::quiet_NaN();
    return true;
  };
  double sx = 0, sy = 0;
  if (!vertex_se(m, p, rss, sx, sy)) {
    reason = "the bowl's parameters are not identified by the points";
    return false;
  }
  // A cost of too high a learning rate that grows faster than quadratically: a cubic term above
  // the optimum in ln lr, on top of the two curvatures or of one. Choosing one model by a test
  // biases the vertex whenever the test drops a term the landscape needs (noisy cells), so the
  // vertex is averaged over the models with Akaike weights (AICc) and its variance includes
  // their spread (Buckland, Burnham & Augustine 1997).
  if (m.ax) {
    struct Candidate {
      BowlModel model;
      Eigen::VectorXd p;
      AsymmetricBowl b;
      double rss, sx, sy, aic;
    };
    const auto n = static_cast<double>(d.x.size());
    auto aicc = [n](double r, double k) {
      return n * std::log(std::max(r, 1e-300) / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1);
    };
    std::vector<Candidate> models{{m, p, b, rss, sx, sy, aicc(rss, m.size())}};
    for (bool two_curvatures : {true, false}) {
      BowlModel mc = m;
      mc.cx = true;
      mc.ax = two_curvatures;
      if (!(n > mc.size() + 3)) continue;
      AsymmetricBowl start = b;
      start.kx_lo = start.kx_hi = 0;
      if (!two_curvatures) start.qx_hi = start.qx_lo;
      Eigen::VectorXd pc = mc.pack(start);
      const double rss_c = levenberg_marquardt(mc, d, pc);
      const AsymmetricBowl bc = mc.unpack(pc);
      double sxc = 0, syc = 0;
      if (rss_c > 0 && convex_bowl(bc) && vertex_se(mc, pc, rss_c, sxc, syc))
        models.push_back({mc, pc, bc, rss_c, sxc, syc, aicc(rss_c, mc.size())});
    }
    std::size_t best_model = 0;
    for (std::size_t i = 1; i < models.size(); ++i)
      if (models[i].aic < models[best_model].aic) best_model = i;
    for (const auto& c : models)
      b.lr_models.push_back(LrModelFit{c.model.cx ? (c.model.ax ? 1 : 2) : 0, c.b.x0, c.b.y0, c.sx, c.sy, c.aic,
                                       LrShape{c.b.qx_hi / c.b.qx_lo, c.b.kx_hi / c.b.qx_lo}});
    const LrModelAverage avg = average_lr_models(b.lr_models);
    const Candidate& chosen = models[best_model];
    std::vector<LrModelFit> fits = std::move(b.lr_models);
    m = chosen.model, p = chosen.p, b = chosen.b, rss = chosen.rss;
    b.lr_models = std::move(fits);
    b.x_asymmetric = true;  // sampled on both sides; one curvature here is the models' choice
    b.x0 = avg.x0, b.y0 = m.with_y ? avg.y0 : b.y0;
    sx = avg.se_x0, sy = m.with_y ? avg.se_y0 : chosen.sy;
    b.lr_shape = avg.shape;
  } else if (m.shape) {
    b.lr_shape = *m.shape;
    b.lr_shape_borrowed = true;
  }
  if (!convex_bowl(b)) {
    reason = "not convex (the lr-batch interaction dominates)";
    return false;
  }
  const auto [xmin, xmax] = std::minmax_element(d.x.begin(), d.x.end());
  const auto [ymin, ymax] = std::minmax_element(d.y.begin(), d.y.end());
  if (b.x0 < *xmin || b.x0 > *xmax || b.y0 < *ymin || b.y0 > *ymax) {
    reason = "minimum outside the swept range";
    return false;
  }
  b.se_x0 = sx;
  b.se_y0 = sy;
  b.points = d.x.size();
  b.residual_sd = std::sqrt(rss / std::max(1.0, static_cast<double>(d.x.size()) - m.size()));
  out = b;
  return true;
}

BowlOptimum asym_optimum(const std::vector<CellPoint>& pts, const LrShape* borrowed) {
  BowlOptimum o;
  const CellPoint& best = *std::min_element(pts.begin(), pts.end(), [](auto& a, auto& b) { return a.loss < b.loss; });
  o.x0 = std::log(best.lr), o.y0 = std::log(best.batch_tokens), o.loss = best.loss;
  if (fit_asymmetric_bowl(pts, o.bowl, o.why, borrowed)) {
    o.fitted = true;
    o.x0 = o.bowl.x0, o.y0 = o.bowl.y0, o.loss = o.bowl.c;
    o.se_x0 = o.bowl.se_x0, o.se_y0 = o.bowl.se_y0;
    return o;
  }
  // The argmin is known only to the grid spacing around it.
  std::set<double> xs, ys;
  for (const auto& p : pts) xs.insert(std::log(p.lr)), ys.insert(std::log(p.batch_tokens));
  auto spacing = [](const std::set<double>& v, double at) {
    auto it = v.find(at);
    double s = 0;
    if (it != v.begin()) s = std::max(s, at - *std::prev(it));
    if (std::next(it) != v.end()) s = std::max(s, *std::next(it) - at);
    return s > 0 ? s : 1.0;
  };
  o.se_x0 = spacing(xs, o.x0);
  o.se_y0 = ys.size() > 1 ? spacing(ys, o.y0) : std::numeric_limits<double>::quiet_NaN();
  return o;
}

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
  if (sel.kind == SelectKind::Asym) {
    // At the best weight decay: the bowl is fitted in (ln lr, ln B).
    std::vector<CellPoint> pts;
    for (const auto& p : cell.points)
      if (p.wd == best.wd) pts.push_back(p);
    const BowlOptimum bo = asym_optimum(pts, sel.borrowed_lr_shape ? &*sel.borrowed_lr_shape : nullptr);
    if (!bo.fitted) {
      out.note = "asymmetric bowl " + bo.why + ": used the argmin";
      out.lr_sd_log = bo.se_x0;
      out.batch_sd_log = bo.se_y0;
      out.flags.push_back("poorly identified: " + bo.why);
      out.selected = {best};
      return true;
    }
    const AsymmetricBowl& b = bo.bowl;
    const double lr = std::exp(b.x0), bt = std::exp(b.y0);
    out.lr = lr;
    out.batch_tokens = bt;
    out.loss = b.c;
    out.lr_sd_log = b.se_x0;
    out.batch_sd_log = b.se_y0;
    out.lr_asymmetry = b.qx_hi / b.qx_lo;
    const double band = sel.eps * b.c;
    out.plateau_lr_lo = lr * std::exp(-std::sqrt(band / b.qx_lo));
    out.plateau_lr_hi = lr * std::exp(std::sqrt(band / b.qx_hi));
    out.plateau_b_lo = bt * std::exp(-std::sqrt(band / b.qy_lo));
    out.plateau_b_hi = bt * std::exp(std::sqrt(band / b.qy_hi));
    if (out.lr_asymmetry > 1.5 || out.lr_asymmetry < 1 / 1.5)
      out.flags.push_back("asymmetric in lr: curvature above/below the optimum " + format_short(out.lr_asymmetry, 2));
    if (b.x_cubic)
      out.flags.push_back("asymmetric in lr: the landscape needs a cubic term above the optimum (most Akaike weight)");
    if (b.lr_shape_borrowed)
      out.flags.push_back(
          "lr sampled on one side of the optimum only: the shape of the other cells borrowed (above/below " +
          format_short(b.qx_hi / b.qx_lo, 2) + ")");
    else if (!b.x_asymmetric)
      out.flags.push_back("lr sampled on one side of the optimum only: one curvature fitted");
    if (!b.lr_shape_borrowed) out.lr_shape = b.lr_shape;
    out.lr_models = b.lr_models;
    out.lr_curvature = b.qx_lo / b.c;
    out.batch_curvature = 0.5 * (b.qy_lo + b.qy_hi) / b.c;
    out.noise = b.residual_sd / b.c;
    out.fitted_points = b.points;
    if (!b.y_asymmetric) out.flags.push_back("batch sampled on one side of the optimum only: one curvature fitted");
    if (b.se_x0 > 0.5 || b.se_y0 > 0.5)
      out.flags.push_back("poorly identified: standard error of ln lr* " + format_short(b.se_x0, 2) + ", of ln B* " +
                          format_short(b.se_y0, 2));
    CellPoint opt = best;
    opt.lr = lr;
    opt.batch_tokens = bt;
    opt.loss = b.c;
    out.selected = {opt};
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
                        double eps, bool asymmetric) {
  const CellPoint& best = cell.best();
  std::vector<CellPoint> pts;
  for (const auto& p : cell.points)
    if (p.wd == best.wd) pts.push_back(p);
  Eigen::VectorXd x(2);
  x << std::log(lr), std::log(batch_tokens);
  AsymmetricBowl ab;
  std::string why;
  if (asymmetric && fit_asymmetric_bowl(pts, ab, why)) {
    method = "asymmetric bowl fit of the cell's landscape";
    const double v = ab.value(x(0), x(1));
    in_plateau = v <= ab.c * (1 + eps);
    return std::max(v, ab.c);
  }
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

std::optional<LrShape> pooled_lr_shape(const std::vector<CellOptimum>& optima) {
  std::vector<double> ratio, cubic;
  for (const auto& o : optima)
    if (o.lr_shape) ratio.push_back(o.lr_shape->upper_ratio), cubic.push_back(o.lr_shape->upper_cubic);
  if (ratio.size() < 3) return std::nullopt;
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t h = v.size() / 2;
    return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
  };
  return LrShape{median(ratio), median(cubic)};
}

std::vector<CellOptimum> select_optima(const std::vector<Cell>& cells, const Selection& sel,
                                       std::vector<std::string>* skipped, const CellSelector& selector) {
  const CellSelector& select = selector ? selector : CellSelector(select_optimum);
  std::vector<CellOptimum> out;
  std::vector<const Cell*> of;
  for (const auto& c : cells) {
    CellOptimum o;
    std::string why;
    if (select(c, sel, o, why))
      out.push_back(std::move(o)), of.push_back(&c);
    else if (skipped)
      skipped->push_back("N=" + format_short(c.params) + " D=" + format_short(c.tokens) + ": " + why);
  }
  if (sel.kind != SelectKind::Asym || sel.borrowed_lr_shape) return out;
  // Family weights from the Akaike criterion summed over the cells that fitted every family.
  double total[kLrModelFamilies] = {0, 0, 0};
  int complete = 0;
  for (const auto& o : out) {
    if (o.lr_models.size() != kLrModelFamilies) continue;
    ++complete;
    for (const auto& f : o.lr_models) total[f.family] += f.aicc;
  }
  if (complete >= 2) {
    const double best = *std::min_element(total, total + kLrModelFamilies);
    double weight[kLrModelFamilies];
    for (int f = 0; f < kLrModelFamilies; ++f) weight[f] = std::exp(-0.5 * (total[f] - best));
    for (auto& o : out) {
      if (o.lr_models.empty()) continue;
      const LrModelAverage a = average_lr_models(o.lr_models, weight);
      o.lr = std::exp(a.x0), o.lr_sd_log = a.se_x0;
      if (std::isfinite(o.batch_sd_log)) o.batch_tokens = std::exp(a.y0), o.batch_sd_log = a.se_y0;
      o.lr_shape = a.shape;
      for (auto& p : o.selected) p.lr = o.lr, p.batch_tokens = o.batch_tokens;
      // The cell's asymmetry flags follow the models as weighted across the cells.
      std::erase_if(o.flags, [](const std::string& f) { return f.rfind("asymmetric in lr", 0) == 0; });
      o.lr_asymmetry = a.shape.upper_ratio;
      if (o.lr_asymmetry > 1.5 || o.lr_asymmetry < 1 / 1.5)
        o.flags.push_back("asymmetric in lr: curvature above/below the optimum " + format_short(o.lr_asymmetry, 2));
      if (a.cubic_weight > 0.5)
        o.flags.push_back("asymmetric in lr: the landscape needs a cubic term above the optimum (most Akaike weight)");
    }
  }
  const std::optional<LrShape> shape = pooled_lr_shape(out);
  if (!shape) return out;
  Selection with_shape = sel;
  with_shape.borrowed_lr_shape = shape;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i].lr_shape) continue;  // measured its own
    CellOptimum o;
    std::string why;
    if (select(*of[i], with_shape, o, why)) out[i] = std::move(o);
  }
  return out;
}

}  // namespace hpsweep
