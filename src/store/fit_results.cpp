#include "hpsweep/store/fit_results.hpp"

#include "hpsweep/store/sweep_store.hpp"
#include "hpsweep/util/error.hpp"

namespace hpsweep {

void check_result_name(const std::string& name) {
  if (name.empty() ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != std::string::npos)
    throw InputError("--name may use letters, digits, '_', '.' and '-' only, got '" + name + "'");
}

std::optional<std::string> store_fit_result(const std::string& path, FitRecord record) {
  try {
    SweepStore store = SweepStore::open_for_update(path, std::nullopt);
    store.record_fit(std::move(record));
    store.finish("completed");
    return std::nullopt;
  } catch (const StoreRefused& e) {
    return std::string(e.what());
  }
}

}  // namespace hpsweep
