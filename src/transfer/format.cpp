#include "hpsweep/transfer/format.hpp"

#include <algorithm>
#include <cmath>

#include "hpsweep/util/json.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {

std::string cell(double v) { return std::isfinite(v) ? format_short(v, 4) : "-"; }

// Display width: UTF-8 continuation bytes take no column.
std::size_t display_width(const std::string& s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

void write_values(JsonWriter& w, const GroupValues& v) {
  w.key("init_std").value(v.init_std);
  w.key("forward_multiplier").value(v.forward_multiplier);
  w.key("adam_lr").value(v.adam_lr);
  w.key("weight_decay").value(v.weight_decay);
  w.key("adam_eps").value(v.adam_eps);
}

}  // namespace

std::string format_transfer(const TransferTable& t) {
  const char* names[] = {"SP", "muP", "u-muP"};
  std::string out = std::string("transfer (") + names[static_cast<int>(t.options.param)] + "): width " +
                    format_short(t.base.width) + " -> " + format_short(t.target.width) +
                    " (m = " + format_short(t.width_ratio, 4) + "), depth " + format_short(t.base.depth) + " -> " +
                    format_short(t.target.depth) + " (m_L = " + format_short(t.depth_ratio, 4) + "), d_ffn " +
                    format_short(t.base.ffn_width) + " -> " + format_short(t.target.ffn_width) +
                    " (m_ffn = " + format_short(t.ffn_ratio, 4) + ")\n";
  out += std::string("  weight decay rule ") + to_string(t.options.wd_rule) + ", " +
         (t.base.decoupled_wd ? "decoupled" : "coupled (AdamW eta*lambda)") + "; depth alpha " +
         format_double(t.options.depth_alpha) + "\n\n";

  // Each cell is "base -> target" with the arrows of a column aligned, so changes read down a column.
  const std::vector<std::string> headers = {"group", "init std", "multiplier", "Adam LR", "weight decay", "Adam eps"};
  auto fields = [](const GroupValues& v) {
    return std::vector<double>{v.init_std, v.forward_multiplier, v.adam_lr, v.weight_decay, v.adam_eps};
  };
  std::vector<std::size_t> base_width(headers.size(), 0), target_width(headers.size(), 0);
  base_width[0] = headers[0].size();
  for (const auto& g : t.groups) {
    base_width[0] = std::max(base_width[0], display_width(g.group));
    const auto b = fields(g.base), v = fields(g.target);
    for (std::size_t c = 1; c < headers.size(); ++c) {
      base_width[c] = std::max(base_width[c], display_width(cell(b[c - 1])));
      target_width[c] = std::max(target_width[c], display_width(cell(v[c - 1])));
    }
  }
  auto pad_right = [](const std::string& s, std::size_t w) { return s + std::string(w - display_width(s), ' '); };
  auto pad_left = [](const std::string& s, std::size_t w) { return std::string(w - display_width(s), ' ') + s; };
  std::vector<std::size_t> column_width(headers.size());
  column_width[0] = base_width[0];
  for (std::size_t c = 1; c < headers.size(); ++c)
    column_width[c] = std::max(headers[c].size(), base_width[c] + 4 + target_width[c]);

  auto end_line = [&out](std::string line) {
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  };
  std::string line = "  " + pad_right(headers[0], column_width[0]);
  for (std::size_t c = 1; c < headers.size(); ++c) line += "  " + pad_right(headers[c], column_width[c]);
  end_line(line);
  for (const auto& g : t.groups) {
    const auto b = fields(g.base), v = fields(g.target);
    line = "  " + pad_right(g.group, column_width[0]);
    for (std::size_t c = 1; c < headers.size(); ++c)
      line += "  " + pad_right(pad_left(cell(b[c - 1]), base_width[c]) + " -> " + cell(v[c - 1]), column_width[c]);
    end_line(line);
  }
  out += "  (base -> target; -: not a setting of this group)\n";

  bool any_note = false;
  for (const auto& g : t.groups)
    if (!g.note.empty()) {
      if (!any_note) out += "\n";
      any_note = true;
      out += "  " + g.group + ": " + g.note + "\n";
    }
  if (!t.notes.empty()) {
    out += "\nnotes:\n";
    for (const auto& n : t.notes) out += "  - " + n + "\n";
  }
  return out;
}

std::string transfer_json(const TransferTable& t) {
  JsonWriter w;
  w.begin_object();
  w.key("parametrization").value(to_string(t.options.param));
  w.key("wd_rule").value(to_string(t.options.wd_rule));
  w.key("depth_alpha").value(t.options.depth_alpha);
  w.key("decoupled_wd").value(t.base.decoupled_wd);
  w.key("base").begin_object();
  w.key("width").value(t.base.width);
  w.key("depth").value(t.base.depth);
  w.key("ffn_width").value(t.base.ffn_width);
  w.key("attention_head_dim").value(t.base.attention_head_dim);
  w.key("lr").value(t.base.lr);
  w.key("wd").value(t.base.wd);
  w.key("norm_bias_wd").value(t.base.norm_bias_wd);
  w.key("init_std").value(t.base.init_std);
  w.key("eps").value(t.base.eps);
  w.key("input_multiplier").value(t.base.input_multiplier);
  w.key("output_multiplier").value(t.base.output_multiplier);
  w.key("input_is_embedding").value(t.base.input_is_embedding);
  w.end_object();
  w.key("target").begin_object();
  w.key("width").value(t.target.width);
  w.key("depth").value(t.target.depth);
  w.key("ffn_width").value(t.target.ffn_width);
  w.key("attention_head_dim").value(t.target.attention_head_dim);
  w.end_object();
  w.key("width_ratio").value(t.width_ratio);
  w.key("depth_ratio").value(t.depth_ratio);
  w.key("ffn_ratio").value(t.ffn_ratio);
  w.key("groups").begin_array();
  for (const auto& g : t.groups) {
    w.begin_object();
    w.key("group").value(g.group);
    write_values(w, g.target);
    w.key("note").value(g.note);
    w.key("base").begin_object();
    write_values(w, g.base);
    w.end_object();
    w.end_object();
  }
  w.end_array();
  w.key("notes").begin_array();
  for (const auto& n : t.notes) w.value(n);
  w.end_array();
  w.end_object();
  return w.str();
}

}  // namespace hpsweep
