#pragma once
// Internal to the mlp backend: random numbers and the network (forward and backward), as
// templates over the scalar type (float for training, double for MlpProbe).
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/mlp/blas.hpp"
#include "backends/mlp/kernels.hpp"
#include "backends/mlp/settings.hpp"

namespace hpsweep::mlp_detail {

// ---------------------------------------------------------------------------------------------
// Random numbers: Box-Muller over mt19937_64 (the standard distributions are
// implementation-defined). Bulk form: one 64-bit draw gives two 24-bit uniforms, and the
// transcendental functions run vectorised over the whole buffer.
// ---------------------------------------------------------------------------------------------

using Index = Eigen::Index;

inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
inline std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  return splitmix64(splitmix64(a) ^ (b * 0xD1B54A32D192ED03ull));
}

class NormalSource {
 public:
  explicit NormalSource(std::uint64_t seed) : rng_(seed) {}
  // Sizes the scratch buffers so fill(n <= max_n) never allocates.
  void reserve(Index max_n) {
    const Index half = (max_n + 1) / 2;
    if (u1_.size() < half) {
      u1_.resize(half);
      u2_.resize(half);
      r_.resize(half);
    }
  }
  void fill(float* out, Index n) {
    const Index half = (n + 1) / 2;
    reserve(n);
    for (Index i = 0; i < half; ++i) {
      const std::uint64_t x = rng_();
      u1_[i] = (static_cast<float>(x >> 40) + 0.5f) * 0x1.0p-24f;       // (0, 1)
      u2_[i] = static_cast<float>((x >> 16) & 0xFFFFFFu) * 0x1.0p-24f;  // [0, 1)
    }
    auto u1 = u1_.head(half), u2 = u2_.head(half), r = r_.head(half);
    r = (-2.0f * u1.log()).sqrt();
    u2 *= static_cast<float>(2.0 * M_PI);
    Eigen::Map<Eigen::ArrayXf> o(out, n);
    o.head(half) = r * u2.cos();
    o.tail(n - half) = r.head(n - half) * u2.head(n - half).sin();
  }
  float uniform() { return static_cast<float>(rng_() >> 40) * 0x1.0p-24f; }

 private:
  std::mt19937_64 rng_;
  Eigen::ArrayXf u1_, u2_, r_;
};

// ---------------------------------------------------------------------------------------------
// The network. Activations are column-major (features x samples): every sample is a contiguous
// column, every GEMM is a plain Eigen product on contiguous blocks, with the forward
// multipliers folded into the GEMM's alpha. Buffers are sized once for max_cols samples; all
// work on n <= max_cols uses leftCols(n) views.
// ---------------------------------------------------------------------------------------------

// Storage for many matrices in one allocation, zeroed: aligned to 2 MiB and on huge pages where
// Linux allows (prefer_huge_pages), as one 4 KiB page per column stride otherwise costs the GEMMs'
// packing and the AdamW update a TLB miss at every step of a transposed read. take() hands out
// consecutive matrices, each on a 64-byte boundary and staggered; a default-constructed Buffer only counts
// (its views have no data), so a layout can be run once to size the real one.
template <class S>
class Buffer {
 public:
  using View = Eigen::Map<Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>>;
  Buffer() = default;
  explicit Buffer(std::size_t scalars) : size_(scalars) {
    constexpr std::size_t kHuge = std::size_t{2} << 20;
    const std::size_t bytes = std::max<std::size_t>(1, scalars) * sizeof(S);
    const std::size_t align = bytes >= kHuge ? kHuge : 64;
    data_.reset(static_cast<S*>(std::aligned_alloc(align, (bytes + align - 1) / align * align)));
    if (!data_) throw std::bad_alloc();
    prefer_huge_pages(data_.get(), bytes);
    std::fill_n(data_.get(), scalars, S(0));
  }
  std::size_t used() const { return used_; }
  View take(Index rows, Index cols) {
    constexpr std::size_t kLine = 64 / sizeof(S);
    const std::size_t n = static_cast<std::size_t>(rows * cols);
    S* p = data_ ? data_.get() + used_ : nullptr;
    // Four lines of gap: matrices of power-of-two sizes would otherwise start at the same
    // offsets modulo the cache's set stride, and elementwise passes over several of them thrash.
    used_ += (n + kLine - 1) / kLine * kLine + 4 * kLine;
    eigen_assert(!data_ || used_ <= size_);
    return View(p, rows, cols);
  }
  void take(std::vector<View>& v, Index count, Index rows, Index cols) {
    v.clear();
    for (Index i = 0; i < count; ++i) v.push_back(take(rows, cols));
  }

 private:
  struct Free {
    void operator()(S* p) const { std::free(p); }
  };
  std::unique_ptr<S[], Free> data_;
  std::size_t size_ = 0, used_ = 0;
};

// Points the Map `v` at other's matrix (assigning one Map to another copies the values).
template <class V>
void seat(V& v, const V& other) {
  new (&v) V(other);
}

constexpr double kNormEps = 1e-6;
constexpr double kGeluC0 = 0.7978845608028654;  // sqrt(2/pi)
constexpr double kGeluC1 = 0.044715;

template <class S>
struct Net {
  using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;
  using Row = Eigen::Matrix<S, 1, Eigen::Dynamic>;

  using View = Eigen::Map<Mat>;  // a matrix in one of the Buffers below

  struct Tensor {
    std::string name;
    Group group;
    View* value;
    View* grad;
  };

  MlpShape sh;
  MlpActivation act;
  S in_mult, w1_mult, w2_mult, res, out_mult;
  Index w, f, L, max_cols = 0;

  Buffer<S> params_memory, activations_memory;
  View w_in{nullptr, 0, 0}, w_out{nullptr, 0, 0}, g_f{nullptr, 0, 0};  // g_f: w x 1
  std::vector<View> w1, w2, g;                                         // g[l]: w x 1
  View d_w_in{nullptr, 0, 0}, d_w_out{nullptr, 0, 0}, d_g_f{nullptr, 0, 0};
  std::vector<View> d_w1, d_w2, d_g;  // d_w1, d_w2: one per block, or one for all (shared_grads)
  std::vector<Tensor> tensors;

  std::vector<View> xs;        // L+1 residual stream states, w x n
  std::vector<Row> rinv;       // L+1 inverse rms per sample (last: final norm)
  std::vector<View> xn;        // L+1 normalised inputs of W1 (last: of W_out), w x n
  std::vector<View> a, da;     // L activations and activation derivatives, f x n
  View u{nullptr, 0, 0};       // f x n pre-activation scratch
  View logits{nullptr, 0, 0};  // classes x n
  View dx{nullptr, 0, 0}, dxn{nullptr, 0, 0}, du{nullptr, 0, 0}, xhat{nullptr, 0, 0};  // backward scratch
  Row dot;

  // shared_grads: one gradient buffer for the W1 of every block and one for the W2, for training
  // that updates each tensor inside the backward pass (backward's done()): a gradient is used up
  // before the next block's overwrites it, and the buffer stays in cache instead of a fresh one
  // per block going out to memory. Clipping (all gradients at once) and the probe keep one each.
  Net(const MlpSettings& s, const MlpShape& shape, Index cols, bool shared_grads = false)
      : sh(shape), act(s.activation) {
    w = shape.width;
    f = shape.ffn;
    L = shape.depth;
    const GroupTable t = group_table(s, shape, 1.0, 0.0);
    in_mult = static_cast<S>(t.g[kInput].multiplier);
    w1_mult = static_cast<S>(t.g[kW1].multiplier);
    w2_mult = static_cast<S>(t.g[kW2].multiplier);
    out_mult = static_cast<S>(t.g[kOutput].multiplier);
    res = static_cast<S>(t.residual);

    // Parameters and gradients in one buffer (zeroed): counted first, then carved.
    const Index grads = shared_grads ? 1 : L;
    auto carve = [&](Buffer<S>& b) {
      seat(w_in, b.take(w, shape.d_in));
      seat(w_out, b.take(shape.classes, w));
      seat(g_f, b.take(w, 1));
      seat(d_w_in, b.take(w, shape.d_in));
      seat(d_w_out, b.take(shape.classes, w));
      seat(d_g_f, b.take(w, 1));
      b.take(w1, L, f, w);
      b.take(w2, L, w, f);
      b.take(g, L, w, 1);
      b.take(d_w1, grads, f, w);
      b.take(d_w2, grads, w, f);
      b.take(d_g, L, w, 1);
    };
    Buffer<S> count;
    carve(count);
    params_memory = Buffer<S>(count.used());
    carve(params_memory);
    g_f.setOnes();
    for (Index l = 0; l < L; ++l) g[l].setOnes();

    tensors.push_back({"input", kInput, &w_in, &d_w_in});
    for (Index l = 0; l < L; ++l) {
      const std::string b = "block" + std::to_string(l);
      tensors.push_back({b + ".norm", kNorm, &g[l], &d_g[l]});
      tensors.push_back({b + ".w1", kW1, &w1[l], &grad_w1(l)});
      tensors.push_back({b + ".w2", kW2, &w2[l], &grad_w2(l)});
    }
    tensors.push_back({"final_norm", kFinalNorm, &g_f, &d_g_f});
    tensors.push_back({"output", kOutput, &w_out, &d_w_out});

    set_max_cols(cols);
  }
  Net(const Net&) = delete;  // tensors point into this object
  Net& operator=(const Net&) = delete;

  View& grad_w1(Index l) { return d_w1[d_w1.size() == 1 ? 0 : static_cast<std::size_t>(l)]; }
  View& grad_w2(Index l) { return d_w2[d_w2.size() == 1 ? 0 : static_cast<std::size_t>(l)]; }

  // Activations and scratch for up to `cols` samples, in one buffer (zeroed).
  void set_max_cols(Index cols) {
    max_cols = cols;
    auto carve = [&](Buffer<S>& b) {
      b.take(xs, L + 1, w, cols);
      b.take(xn, L + 1, w, cols);
      b.take(a, L, f, cols);
      b.take(da, L, f, cols);
      seat(u, b.take(f, cols));
      seat(logits, b.take(sh.classes, cols));
      seat(dx, b.take(w, cols));
      seat(dxn, b.take(w, cols));
      seat(du, b.take(f, cols));
      seat(xhat, b.take(w, cols));
    };
    Buffer<S> count;
    carve(count);
    activations_memory = Buffer<S>(count.used());
    carve(activations_memory);
    rinv.assign(static_cast<std::size_t>(L + 1), Row::Zero(cols));
    dot.setZero(cols);
  }

  // Standard normals scaled per group; gains 1.
  void init(const MlpSettings& s, NormalSource& rng) {
    const GroupTable t = group_table(s, sh, 1.0, 0.0);
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic> tmp;
    for (auto& tensor : tensors) {
      const AppliedGroup& grp = t.g[tensor.group];
      View& v = *tensor.value;
      if (grp.init_std == 0) {
        v.setConstant(static_cast<S>(grp.init_mean));
        continue;
      }
      tmp.resize(v.rows(), v.cols());
      rng.fill(tmp.data(), tmp.size());
      v = (tmp.template cast<S>() * static_cast<S>(grp.init_std)).array() + static_cast<S>(grp.init_mean);
    }
  }

  // y = g * x / rms(x), per column.
  void norm_forward(const View& x, const View& gain, Row& r, View& y, Index n) {
    r.head(n) =
        ((x.leftCols(n).colwise().squaredNorm() / static_cast<S>(w)).array() + static_cast<S>(kNormEps)).rsqrt();
    y.leftCols(n).noalias() = gain.col(0).asDiagonal() * x.leftCols(n) * r.head(n).asDiagonal();
  }

  // dx += d(norm)/dx^T dy; d_gain = sum over samples of dy * xhat. Overwrites dy.
  void norm_backward(View& dy, const View& x, const Row& r, const View& gain, View& d_gain, View& dx_out, Index n,
                     bool accumulate) {
    auto xh = xhat.leftCols(n);
    auto d = dy.leftCols(n);
    xh.noalias() = x.leftCols(n) * r.head(n).asDiagonal();
    d_gain.col(0).noalias() = (d.array() * xh.array()).matrix().rowwise().sum();
    d.noalias() = gain.col(0).asDiagonal() * d;  // coefficient-wise: safe in place
    dot.head(n).noalias() = (d.array() * xh.array()).matrix().colwise().sum() / static_cast<S>(w);
    if (accumulate)
      dx_out.leftCols(n).array() +=
          (d.array() - xh.array().rowwise() * dot.head(n).array()).rowwise() * r.head(n).array();
    else
      dx_out.leftCols(n).array() =
          (d.array() - xh.array().rowwise() * dot.head(n).array()).rowwise() * r.head(n).array();
  }

  // a[l] = act(u), da[l] = act'(u) over f x n (contiguous: the columns have outer stride f).
  // Float: the kernels of kernels.hpp, at the CPU's vector width. Double (the probe): Eigen, in
  // chunks that stay in L1 between the passes.
  void activation(Index l, Index n) {
    if constexpr (std::is_same_v<S, float>) {
      (act == MlpActivation::Relu ? relu : gelu_tanh)(u.data(), a[l].data(), da[l].data(), f * n);
      return;
    }
    constexpr Index kChunk = 2048;
    const Index size = f * n;
    for (Index start = 0; start < size; start += kChunk) {
      const Index m = std::min(kChunk, size - start);
      const Eigen::Map<const Eigen::Array<S, Eigen::Dynamic, 1>> U(u.data() + start, m);
      Eigen::Map<Eigen::Array<S, Eigen::Dynamic, 1>> A(a[l].data() + start, m), D(da[l].data() + start, m);
      if (act == MlpActivation::Relu) {
        A = U.max(S(0));
        D = (U > S(0)).template cast<S>();
        continue;
      }
      const S c0 = static_cast<S>(kGeluC0), c1 = static_cast<S>(kGeluC1);
      D = (c0 * (U + c1 * U.cube())).tanh();  // D holds tanh(.) for a moment
      A = S(0.5) * U * (S(1) + D);
      D = S(0.5) * (S(1) + D) + (S(0.5) * c0) * U * (S(1) - D.square()) * (S(1) + (S(3) * c1) * U.square());
    }
  }

  // Fills logits.leftCols(n) for inputs x (d_in x >= n). GEMMs: product() (OpenBLAS).
  template <class X>
  void forward(const X& x, Index n) {
    product(in_mult, w_in, false, x.leftCols(n), false, S(0), xs[0].leftCols(n));
    for (Index l = 0; l < L; ++l) {
      norm_forward(xs[l], g[l], rinv[l], xn[l], n);
      product(w1_mult, w1[l], false, xn[l].leftCols(n), false, S(0), u.leftCols(n));
      activation(l, n);
      xs[l + 1].leftCols(n) = xs[l].leftCols(n);
      product(res * w2_mult, w2[l], false, a[l].leftCols(n), false, S(1), xs[l + 1].leftCols(n));
    }
    norm_forward(xs[L], g_f, rinv[L], xn[L], n);
    product(out_mult, w_out, false, xn[L].leftCols(n), false, S(0), logits.leftCols(n));
  }

  // Positions in `tensors` (the order of the constructor).
  static Index input_tensor() { return 0; }
  static Index norm_tensor(Index l) { return 1 + 3 * l; }
  static Index w1_tensor(Index l) { return 2 + 3 * l; }
  static Index w2_tensor(Index l) { return 3 + 3 * l; }
  Index final_norm_tensor() const { return 1 + 3 * L; }
  Index output_tensor() const { return 2 + 3 * L; }

  // Gradients of every tensor given dlogits (classes x n) = dLoss/dlogits. done(k) is called as
  // soon as tensor k's gradient is final and the pass no longer reads its value: the optimizer
  // can update it there, while the gradient and the weights are still in cache.
  template <class X, class D, class Done>
  void backward(const X& x, const D& dlogits, Index n, Done&& done) {
    product(out_mult, dlogits.leftCols(n), false, xn[L].leftCols(n), true, S(0), d_w_out);
    product(out_mult, w_out, true, dlogits.leftCols(n), false, S(0), dxn.leftCols(n));
    done(output_tensor());
    norm_backward(dxn, xs[L], rinv[L], g_f, d_g_f, dx, n, false);
    done(final_norm_tensor());
    const S c2 = res * w2_mult;
    for (Index l = L - 1; l >= 0; --l) {
      product(c2, dx.leftCols(n), false, a[l].leftCols(n), true, S(0), grad_w2(l));
      product(c2, w2[l], true, dx.leftCols(n), false, S(0), du.leftCols(n));
      done(w2_tensor(l));
      if constexpr (std::is_same_v<S, float>)
        multiply(du.data(), da[l].data(), f * n);  // contiguous: outer stride f
      else
        du.leftCols(n).array() *= da[l].leftCols(n).array();
      product(w1_mult, du.leftCols(n), false, xn[l].leftCols(n), true, S(0), grad_w1(l));
      product(w1_mult, w1[l], true, du.leftCols(n), false, S(0), dxn.leftCols(n));
      done(w1_tensor(l));
      norm_backward(dxn, xs[l], rinv[l], g[l], d_g[l], dx, n, true);
      done(norm_tensor(l));
    }
    product(in_mult, dx.leftCols(n), false, x.leftCols(n), true, S(0), d_w_in);
    done(input_tensor());
  }
  template <class X, class D>
  void backward(const X& x, const D& dlogits, Index n) {
    backward(x, dlogits, n, [](Index) {});
  }
};

using MatF = Eigen::MatrixXf;
using RowF = Eigen::RowVectorXf;

// Column-wise softmax statistics of logits z (c x n): m = max, lse = m + log sum exp(z - m);
// p = softmax(z) written to `p`.
template <class Z, class P, class R>
void softmax_columns(const Z& z, P& p, R& m, R& lse, Index n) {
  m.head(n) = z.leftCols(n).colwise().maxCoeff();
  p.leftCols(n) = z.leftCols(n);
  p.leftCols(n).rowwise() -= m.head(n);
  p.leftCols(n).array() = p.leftCols(n).array().exp();  // in place: vectorised exp
  lse.head(n) = p.leftCols(n).colwise().sum();
  p.leftCols(n).array().rowwise() /= lse.head(n).array();
  lse.head(n).array() = lse.head(n).array().log() + m.head(n).array();
}

}  // namespace hpsweep::mlp_detail
