#pragma once
// Small text helpers shared by the job parser, the reports and the CLI.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hpsweep {

std::string trim(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);
std::string to_lower(std::string_view s);
// s quoted for an error message, cut at 60 characters, control characters shown as '?'.
std::string shown(std::string_view s);

// Levenshtein distance, for "did you mean" suggestions.
std::size_t edit_distance(std::string_view a, std::string_view b);
// Closest candidate within a distance that still reads as a typo, or "".
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

// Shortest text that reads back to exactly the same double (round trip).
std::string format_double(double v);
// Compact human form: 1.2e+09 -> "1.2e9", 3e-4 -> "3e-4".
std::string format_short(double v, int digits = 3);
std::string format_duration(double seconds);

// 64-bit FNV-1a: stable across platforms, compilers and runs; used for trial ids and job hashes.
std::uint64_t fnv1a64(std::string_view data);
std::string hex64(std::uint64_t v);
bool parse_hex64(std::string_view s, std::uint64_t& out);

std::string iso8601_utc(double unix_seconds);
double unix_now();
std::string host_name();

}  // namespace hpsweep
