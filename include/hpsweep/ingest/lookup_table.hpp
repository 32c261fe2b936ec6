#pragma once
// The readers behind kind = lookup (spec/lookup.hpp): a results CSV through the CSV ingest's own
// reader (same columns, batch unit and divergence rule as `hpsweep ingest`), or a sweep .h5
// through the store. The program installs them once with install_lookup_table_reader().
#include <vector>

#include "hpsweep/spec/lookup.hpp"

namespace hpsweep {

std::vector<LookupRow> read_lookup_table(const LookupSettings& settings);
void install_lookup_table_reader();

}  // namespace hpsweep
