// The double-precision probe of the network, for gradient and coordinate checks.
#include "backends/mlp/network.hpp"

#include "hpsweep/util/error.hpp"

namespace hpsweep {

using namespace mlp_detail;

// ---------------------------------------------------------------------------------------------
// Double-precision probe
// ---------------------------------------------------------------------------------------------

struct MlpProbe::Impl {
  MlpShape shape;
  Net<double> net;
  std::vector<Tensor> tensors;
  Eigen::MatrixXd p;
  Eigen::RowVectorXd m, lse;
  Index n = 0;
  Impl(const MlpSettings& s, const MlpShape& sh, std::uint64_t seed) : shape(sh), net(s, sh, 1) {
    NormalSource rng(seed);
    net.init(s, rng);
    for (const auto& t : net.tensors)
      tensors.push_back({t.name, kGroupNames[t.group], static_cast<std::size_t>(t.value->size())});
  }
};

MlpProbe::MlpProbe(const MlpSettings& s, const MlpShape& shape, std::uint64_t seed)
    : impl_(std::make_unique<Impl>(s, shape, seed)) {}
MlpProbe::~MlpProbe() = default;
const std::vector<MlpProbe::Tensor>& MlpProbe::tensors() const { return impl_->tensors; }
double& MlpProbe::value(std::size_t tensor, std::size_t index) {
  return impl_->net.tensors.at(tensor).value->data()[index];
}
double MlpProbe::gradient(std::size_t tensor, std::size_t index) const {
  return impl_->net.tensors.at(tensor).grad->data()[index];
}

double MlpProbe::loss(const std::vector<double>& x, const std::vector<int>& labels, bool gradients) {
  auto& I = *impl_;
  const Index n = static_cast<Index>(labels.size());
  if (n < 1 || static_cast<Index>(x.size()) != n * I.shape.d_in)
    throw Error("MlpProbe::loss: x must hold d_in x labels.size() values, labels must not be empty");
  if (n > I.net.max_cols) I.net.set_max_cols(n);
  if (I.p.cols() < n) {
    I.p.resize(I.shape.classes, n);
    I.m.resize(n);
    I.lse.resize(n);
  }
  const Eigen::Map<const Eigen::MatrixXd> xm(x.data(), I.shape.d_in, n);
  I.net.forward(xm, n);
  I.n = n;
  softmax_columns(I.net.logits, I.p, I.m, I.lse, n);
  double total = 0;
  for (Index j = 0; j < n; ++j) {
    const int y = labels[static_cast<std::size_t>(j)];
    if (y < 0 || y >= I.shape.classes) throw Error("MlpProbe::loss: label out of range");
    total += I.lse[j] - I.net.logits(y, j);
  }
  if (gradients) {
    auto dl = I.p.leftCols(n);
    for (Index j = 0; j < n; ++j) dl(labels[static_cast<std::size_t>(j)], j) -= 1.0;
    dl /= static_cast<double>(n);
    I.net.backward(xm, I.p, n);
  }
  return total / static_cast<double>(n);
}

std::vector<double> MlpProbe::mean_abs_activations() const {
  const auto& I = *impl_;
  std::vector<double> out;
  for (Index l = 1; l <= I.net.L; ++l) out.push_back(I.net.xs[l].leftCols(I.n).cwiseAbs().mean());
  out.push_back(I.net.logits.leftCols(I.n).cwiseAbs().mean());
  return out;
}

}  // namespace hpsweep
