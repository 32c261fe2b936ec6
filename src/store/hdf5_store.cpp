#include "hpsweep/store/hdf5_store.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"
#include "hpsweep/version.hpp"

namespace hpsweep {

namespace {

// In-memory row layouts; the compound types below map them field by field.
struct TrialRow {
  std::uint64_t id;
  char id_hex[17];
  double params, tokens, lr;
  std::int64_t batch, seq_len;
  double batch_tokens, wd;
  std::int32_t repeat;
  std::uint8_t state;
  double final_loss, smooth_loss;
  std::int64_t steps;
  double start_time, wall_time;
  std::int32_t rank, attempt, launch;
  const char* host;
  const char* error;
  std::uint64_t curve_offset, curve_length;
  const char* source;
  std::uint8_t finished;
  const char* variant;  // from here on: schema 2 (see row_type_extended)
  const char* details;
  const char* devices;  // schema 4
};

struct LaunchRow {
  std::int32_t index;
  double start_time, end_time;
  std::int32_t ranks;
  const char* hosts;
  const char* slurm_job_id;
  std::int32_t slurm_restart_count;
  const char* command;
  const char* ended;
  std::int64_t trials_recorded;
};

struct GridRow {
  std::uint64_t id;
  char id_hex[17];
  double params, tokens, lr;
  std::int64_t batch, seq_len;
  double batch_tokens, wd;
  std::int32_t repeat;
  double compute;
  const char* variant;
};

h5::Id state_enum_type() {
  h5::Id t(H5Tenum_create(H5T_NATIVE_UINT8), H5Tclose);
  for (int s = 0; s <= static_cast<int>(kLastTrialState); ++s) {
    const auto v = static_cast<std::uint8_t>(s);
    H5Tenum_insert(t, to_string(static_cast<TrialState>(s)), &v);
  }
  return t;
}

// The trial coordinates, shared by the /trials and /grid rows (same field names and order).
template <class Row>
void insert_point_fields(hid_t t, hid_t hex) {
#define F(name, type) H5Tinsert(t, #name, HOFFSET(Row, name), type)
  F(id, H5T_NATIVE_UINT64);
  F(id_hex, hex);
  F(params, H5T_NATIVE_DOUBLE);
  F(tokens, H5T_NATIVE_DOUBLE);
  F(lr, H5T_NATIVE_DOUBLE);
  F(batch, H5T_NATIVE_INT64);
  F(seq_len, H5T_NATIVE_INT64);
  F(batch_tokens, H5T_NATIVE_DOUBLE);
  F(wd, H5T_NATIVE_DOUBLE);
  F(repeat, H5T_NATIVE_INT32);
#undef F
}

// Schema-1 files lack `variant` and `details`, schema 2 and 3 `devices`; reading them with a
// memory type that has them is not a defined conversion, so readers ask for the older layout.
// Writers never meet it: opening an older file for writing rewrites it in the current layout
// first (sweep_store.cpp).
enum class TrialLayout { Schema1, Schema2, Current };
TrialLayout trial_layout(hid_t dataset) {
  h5::Id type(H5Dget_type(dataset), H5Tclose);
  if (H5Tget_member_index(type, "variant") < 0) return TrialLayout::Schema1;
  return H5Tget_member_index(type, "devices") < 0 ? TrialLayout::Schema2 : TrialLayout::Current;
}

h5::Id trial_row_type(TrialLayout layout = TrialLayout::Current) {
  h5::Id t(H5Tcreate(H5T_COMPOUND, sizeof(TrialRow)), H5Tclose);
  h5::Id vstr = h5::variable_string_type(), hex = h5::fixed_string_type(17), state = state_enum_type();
#define F(name, type) H5Tinsert(t, #name, HOFFSET(TrialRow, name), type)
  insert_point_fields<TrialRow>(t, hex);
  F(state, state);
  F(final_loss, H5T_NATIVE_DOUBLE);
  F(smooth_loss, H5T_NATIVE_DOUBLE);
  F(steps, H5T_NATIVE_INT64);
  F(start_time, H5T_NATIVE_DOUBLE);
  F(wall_time, H5T_NATIVE_DOUBLE);
  F(rank, H5T_NATIVE_INT32);
  F(attempt, H5T_NATIVE_INT32);
  F(launch, H5T_NATIVE_INT32);
  F(host, vstr);
  F(error, vstr);
  F(curve_offset, H5T_NATIVE_UINT64);
  F(curve_length, H5T_NATIVE_UINT64);
  F(source, vstr);
  F(finished, H5T_NATIVE_UINT8);
  if (layout != TrialLayout::Schema1) {
    F(variant, vstr);
    F(details, vstr);
  }
  if (layout == TrialLayout::Current) F(devices, vstr);
#undef F
  return t;
}

h5::Id launch_row_type() {
  h5::Id t(H5Tcreate(H5T_COMPOUND, sizeof(LaunchRow)), H5Tclose);
  h5::Id vstr = h5::variable_string_type();
#define F(name, type) H5Tinsert(t, #name, HOFFSET(LaunchRow, name), type)
  F(index, H5T_NATIVE_INT32);
  F(start_time, H5T_NATIVE_DOUBLE);
  F(end_time, H5T_NATIVE_DOUBLE);
  F(ranks, H5T_NATIVE_INT32);
  F(hosts, vstr);
  F(slurm_job_id, vstr);
  F(slurm_restart_count, H5T_NATIVE_INT32);
  F(command, vstr);
  F(ended, vstr);
  F(trials_recorded, H5T_NATIVE_INT64);
#undef F
  return t;
}

h5::Id grid_row_type() {
  h5::Id t(H5Tcreate(H5T_COMPOUND, sizeof(GridRow)), H5Tclose);
  h5::Id hex = h5::fixed_string_type(17), vstr = h5::variable_string_type();
#define F(name, type) H5Tinsert(t, #name, HOFFSET(GridRow, name), type)
  insert_point_fields<GridRow>(t, hex);
  F(compute, H5T_NATIVE_DOUBLE);
  F(variant, vstr);
#undef F
  return t;
}

void fill_point(const Trial& t, std::uint64_t& id, char* hex, double& params, double& tokens, double& lr,
                std::int64_t& batch, std::int64_t& seq_len, double& batch_tokens, double& wd, std::int32_t& repeat) {
  id = t.id;
  std::snprintf(hex, 17, "%s", hex64(t.id).c_str());
  params = t.point.params;
  tokens = t.point.tokens;
  lr = t.point.lr;
  batch = t.point.batch;
  seq_len = t.point.seq_len;
  batch_tokens = t.point.batch_tokens();
  wd = t.point.wd;
  repeat = t.point.repeat;
}

struct CoefficientRow {
  const char* law;
  const char* name;
  double estimate, mean, median, lo, hi;
};

h5::Id coefficient_row_type() {
  h5::Id t(H5Tcreate(H5T_COMPOUND, sizeof(CoefficientRow)), H5Tclose);
  h5::Id vstr = h5::variable_string_type();
#define F(name, type) H5Tinsert(t, #name, HOFFSET(CoefficientRow, name), type)
  F(law, vstr);
  F(name, vstr);
  F(estimate, H5T_NATIVE_DOUBLE);
  F(mean, H5T_NATIVE_DOUBLE);
  F(median, H5T_NATIVE_DOUBLE);
  F(lo, H5T_NATIVE_DOUBLE);
  F(hi, H5T_NATIVE_DOUBLE);
#undef F
  return t;
}

h5::Id fit_point_type() {
  h5::Id t(H5Tcreate(H5T_COMPOUND, sizeof(FitPoint)), H5Tclose);
#define F(name) H5Tinsert(t, #name, HOFFSET(FitPoint, name), H5T_NATIVE_DOUBLE)
  F(params);
  F(tokens);
  F(lr);
  F(batch_tokens);
  F(wd);
  F(loss);
#undef F
  return t;
}

constexpr hsize_t kTrialChunk = 1024;
constexpr hsize_t kCurveChunk = 16384;

}  // namespace

void Hdf5Store::create_layout(hid_t file, const std::string& path) {
  h5::create_extendible(file, "trials", trial_row_type(), kTrialChunk, path);
  h5::create_extendible(file, "launches", launch_row_type(), 64, path);
  h5::create_extendible(file, "grid", grid_row_type(), kTrialChunk, path);
  h5::create_extendible(file, "curves/step", H5T_STD_I64LE, kCurveChunk, path);
  h5::create_extendible(file, "curves/loss", H5T_IEEE_F64LE, kCurveChunk, path);
}

void Hdf5Store::write_snapshot(const std::string& path, const SweepLog& log, const std::vector<Trial>& grid,
                               std::uint64_t journal_records) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  try {
    h5::Id file = h5::create_file(tmp);
    create_layout(file, tmp);
    Hdf5Store store(tmp, std::move(file));
    h5::write_int_attr(store.file_, "schema_version", log.schema_version, tmp);
    h5::write_string_attr(store.file_, "tool_version", log.tool_version, tmp);
    h5::write_string_attr(store.file_, "created", iso8601_utc(log.created), tmp);
    store.write_job(log.job_path, log.job_text);
    store.write_grid(grid);
    store.append_results(log, 0);
    store.write_launches(log.launches);
    store.write_fits(log.fits);
    store.set_journal_records(journal_records);
    store.flush();
    store.close();
  } catch (...) {
    std::remove(tmp.c_str());  // a full disk must not leave a partial copy behind
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw_system_error("cannot rename new store into place", path);
}

Hdf5Store Hdf5Store::open(const std::string& path) { return Hdf5Store(path, h5::open_file(path, true)); }

void Hdf5Store::write_job(const std::string& job_path, const std::string& job_text) {
  h5::write_string_attr(file_, "job_text", job_text, path_);
  h5::write_string_attr(file_, "job_path", job_path, path_);
  h5::write_string_attr(file_, "job_hash", hex64(fnv1a64(job_text)), path_);
}

void Hdf5Store::write_fits(const std::vector<FitRecord>& fits) {
  if (fits.empty()) return;
  if (H5Lexists(file_, "fits", H5P_DEFAULT) <= 0) {
    h5::Id g(h5::check(H5Gcreate2(file_, "fits", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "create group /fits", path_),
             H5Gclose);
  }
  h5::Id fits_group(h5::check(H5Gopen2(file_, "fits", H5P_DEFAULT), "open group /fits", path_), H5Gclose);
  for (const auto& f : fits) {
    if (H5Lexists(fits_group, f.name.c_str(), H5P_DEFAULT) > 0)
      h5::check(H5Ldelete(fits_group, f.name.c_str(), H5P_DEFAULT), "replace fit " + f.name, path_);
    h5::Id g(h5::check(H5Gcreate2(fits_group, f.name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                       "create fit group " + f.name, path_),
             H5Gclose);
    h5::write_string_attr(g, "kind", to_string(f.kind), path_);
    h5::write_string_attr(g, "options", f.options, path_);
    h5::write_string_attr(g, "created", iso8601_utc(f.created), path_);
    h5::write_string_attr(g, "json", f.json, path_);
    h5::write_int_attr(g, "results", static_cast<std::int64_t>(f.results), path_);
    std::vector<CoefficientRow> rows;
    for (const auto& c : f.coefficients)
      rows.push_back(CoefficientRow{c.law.c_str(), c.name.c_str(), c.estimate, c.mean, c.median, c.lo, c.hi});
    h5::create_table(g, "coefficients", coefficient_row_type(), rows.data(), rows.size(), path_);
    h5::create_table(g, "points", fit_point_type(), f.points.data(), f.points.size(), path_);
  }
}

void Hdf5Store::set_journal_records(std::uint64_t n) {
  h5::write_int_attr(file_, "journal_records", static_cast<std::int64_t>(n), path_);
}

void Hdf5Store::append_results(const SweepLog& log, std::size_t from) {
  if (from >= log.results.size()) return;
  h5::Id trials = h5::open_dataset(file_, "trials", path_);
  h5::Id steps = h5::open_dataset(file_, "curves/step", path_);
  h5::Id losses = h5::open_dataset(file_, "curves/loss", path_);
  std::uint64_t offset = h5::dataset_length(steps, path_);
  std::vector<TrialRow> rows;
  rows.reserve(log.results.size() - from);
  std::vector<std::int64_t> all_steps;
  std::vector<double> all_losses;
  for (std::size_t i = from; i < log.results.size(); ++i) {
    const TrialRecord& r = log.results[i];
    TrialRow row{};
    fill_point(r.trial, row.id, row.id_hex, row.params, row.tokens, row.lr, row.batch, row.seq_len, row.batch_tokens,
               row.wd, row.repeat);
    row.state = static_cast<std::uint8_t>(r.outcome.state);
    row.final_loss = r.outcome.final_loss;
    row.smooth_loss = r.outcome.smooth_loss;
    row.steps = r.outcome.steps;
    row.start_time = r.start_time;
    row.wall_time = r.wall_time;
    row.rank = r.rank;
    row.attempt = r.attempt;
    row.launch = r.launch;
    row.host = r.host.c_str();
    row.error = r.outcome.error.c_str();
    row.curve_offset = offset;
    row.curve_length = r.outcome.curve.step.size();
    row.source = r.source.c_str();
    row.finished = r.finished ? 1 : 0;
    row.variant = r.trial.point.variant.c_str();
    row.details = r.outcome.details.c_str();
    row.devices = r.devices.c_str();
    offset += row.curve_length;
    all_steps.insert(all_steps.end(), r.outcome.curve.step.begin(), r.outcome.curve.step.end());
    all_losses.insert(all_losses.end(), r.outcome.curve.loss.begin(), r.outcome.curve.loss.end());
    rows.push_back(row);
  }
  h5::append(steps, H5T_NATIVE_INT64, all_steps.data(), all_steps.size(), path_);
  h5::append(losses, H5T_NATIVE_DOUBLE, all_losses.data(), all_losses.size(), path_);
  h5::append(trials, trial_row_type(), rows.data(), rows.size(), path_);
}

void Hdf5Store::write_launches(const std::vector<LaunchRecord>& launches) {
  std::vector<LaunchRow> rows;
  for (const auto& l : launches)
    rows.push_back(LaunchRow{l.index, l.start_time, l.end_time, l.ranks, l.hosts.c_str(), l.slurm_job_id.c_str(),
                             l.slurm_restart_count, l.command.c_str(), l.ended.c_str(), l.trials_recorded});
  h5::Id ds = h5::open_dataset(file_, "launches", path_);
  h5::overwrite(ds, launch_row_type(), rows.data(), rows.size(), path_);
}

void Hdf5Store::write_grid(const std::vector<Trial>& grid) {
  std::vector<GridRow> rows(grid.size());
  for (std::size_t i = 0; i < grid.size(); ++i) {
    GridRow& g = rows[i];
    fill_point(grid[i], g.id, g.id_hex, g.params, g.tokens, g.lr, g.batch, g.seq_len, g.batch_tokens, g.wd, g.repeat);
    g.compute = grid[i].point.compute();
    g.variant = grid[i].point.variant.c_str();
  }
  h5::Id ds = h5::open_dataset(file_, "grid", path_);
  h5::overwrite(ds, grid_row_type(), rows.data(), rows.size(), path_);
}

void Hdf5Store::flush() { h5::check(H5Fflush(file_, H5F_SCOPE_GLOBAL), "flush", path_); }

void Hdf5Store::close() {
  const hid_t id = file_.get();
  file_.release();
  h5::close_file(id, path_);
}

StoreContents read_store(const std::string& path) {
  if (!h5::is_hdf5_file(path))
    throw StoreRefused("'" + path + "' is not a readable HDF5 file (truncated or another format); it was not modified");
  StoreContents out;
  const h5::CrashGuard guard(path, "reading it");
  try {
    h5::Id file = h5::open_file(path, false);
    if (!h5::has_attr(file, "schema_version") || !h5::has_attr(file, "job_text"))
      throw StoreRefused("'" + path +
                         "' is an HDF5 file but not an hpsweep sweep (no schema_version/job_text attributes)");
    SweepLog& log = out.log;
    log.schema_version = static_cast<int>(h5::read_int_attr(file, "schema_version", path));
    if (log.schema_version > kSchemaVersion)
      throw StoreRefused("'" + path + "' has schema version " + std::to_string(log.schema_version) +
                         ", newer than this hpsweep understands (" + std::to_string(kSchemaVersion) + ")");
    log.tool_version = h5::read_string_attr(file, "tool_version", path);
    log.job_text = h5::read_string_attr(file, "job_text", path);
    log.job_path = h5::read_string_attr(file, "job_path", path);
    out.journal_records = static_cast<std::uint64_t>(h5::read_int_attr(file, "journal_records", path));

    h5::Id steps_ds = h5::open_dataset(file, "curves/step", path);
    h5::Id loss_ds = h5::open_dataset(file, "curves/loss", path);
    std::vector<std::int64_t> steps(h5::checked_length(steps_ds, path));
    std::vector<double> losses(h5::checked_length(loss_ds, path));
    if (steps.size() != losses.size())
      throw StoreRefused("'" + path + "' is damaged: /curves/step has " + std::to_string(steps.size()) +
                         " elements, /curves/loss " + std::to_string(losses.size()) + "; it was not modified");
    h5::read_all(steps_ds, H5T_NATIVE_INT64, steps.data(), path);
    h5::read_all(loss_ds, H5T_NATIVE_DOUBLE, losses.data(), path);

    h5::Id trials = h5::open_dataset(file, "trials", path);
    h5::Id ttype = trial_row_type(trial_layout(trials));
    std::vector<TrialRow> rows(h5::checked_length(trials, path));
    h5::read_all(trials, ttype, rows.data(), path);
    for (const auto& row : rows) {
      TrialRecord r;
      r.trial.id = row.id;
      r.trial.point = TrialPoint{row.params, row.tokens, row.lr, row.batch, row.seq_len, row.wd, row.repeat, ""};
      if (row.state > static_cast<std::uint8_t>(kLastTrialState))
        throw StoreRefused("'" + path + "' is damaged: trial " + hex64(row.id) + " has an unknown state " +
                           std::to_string(row.state) + "; it was not modified");
      r.outcome.state = static_cast<TrialState>(row.state);
      r.outcome.final_loss = row.final_loss;
      r.outcome.smooth_loss = row.smooth_loss;
      r.outcome.steps = row.steps;
      r.outcome.error = row.error ? row.error : "";
      r.start_time = row.start_time;
      r.wall_time = row.wall_time;
      r.rank = row.rank;
      r.host = row.host ? row.host : "";
      r.attempt = row.attempt;
      r.launch = row.launch;
      r.source = row.source ? row.source : "";
      r.finished = row.finished != 0;
      r.trial.point.variant = row.variant ? row.variant : "";
      r.outcome.details = row.details ? row.details : "";
      r.devices = row.devices ? row.devices : "";
      if (row.curve_length > steps.size() || row.curve_offset > steps.size() - row.curve_length)
        throw StoreRefused("'" + path + "' is damaged: trial " + hex64(row.id) + " claims curve elements [" +
                           std::to_string(row.curve_offset) + ", +" + std::to_string(row.curve_length) +
                           ") outside /curves (" + std::to_string(steps.size()) + "); it was not modified");
      r.outcome.curve.step.assign(steps.begin() + row.curve_offset,
                                  steps.begin() + row.curve_offset + row.curve_length);
      r.outcome.curve.loss.assign(losses.begin() + row.curve_offset,
                                  losses.begin() + row.curve_offset + row.curve_length);
      log.add_result(std::move(r));
    }
    if (!rows.empty()) {
      h5::Id space(H5Dget_space(trials), H5Sclose);
      H5Dvlen_reclaim(ttype, space, H5P_DEFAULT, rows.data());
    }

    h5::Id launches = h5::open_dataset(file, "launches", path);
    h5::Id ltype = launch_row_type();
    std::vector<LaunchRow> lrows(h5::checked_length(launches, path));
    h5::read_all(launches, ltype, lrows.data(), path);
    for (const auto& l : lrows) {
      log.launches.push_back(LaunchRecord{l.index, l.start_time, l.end_time, l.ranks, l.hosts ? l.hosts : "",
                                          l.slurm_job_id ? l.slurm_job_id : "", l.slurm_restart_count,
                                          l.command ? l.command : "", l.ended ? l.ended : "", l.trials_recorded});
    }
    if (!lrows.empty()) {
      h5::Id space(H5Dget_space(launches), H5Sclose);
      H5Dvlen_reclaim(ltype, space, H5P_DEFAULT, lrows.data());
    }
    if (H5Lexists(file, "fits", H5P_DEFAULT) > 0) {
      h5::Id fits(h5::check(H5Gopen2(file, "fits", H5P_DEFAULT), "open /fits", path), H5Gclose);
      H5G_info_t info{};
      h5::check(H5Gget_info(fits, &info), "H5Gget_info /fits", path);
      for (hsize_t i = 0; i < info.nlinks; ++i) {
        char name[256] = {0};
        h5::check(H5Lget_name_by_idx(fits, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name - 1, H5P_DEFAULT),
                  "fit name", path);
        h5::Id g(h5::check(H5Gopen2(fits, name, H5P_DEFAULT), std::string("open fit ") + name, path), H5Gclose);
        FitRecord f;
        f.name = name;
        f.options = h5::read_string_attr(g, "options", path);
        if (h5::has_attr(g, "kind")) {
          const auto kind = parse_result_kind(h5::read_string_attr(g, "kind", path));
          if (!kind)
            throw StoreRefused("'" + path + "': /fits/" + f.name + " has an unknown kind; it was not modified");
          f.kind = *kind;
        } else {
          f.kind = legacy_result_kind(f.options);  // written before kinds existed
        }
        f.json = h5::read_string_attr(g, "json", path);
        f.results = static_cast<std::uint64_t>(h5::read_int_attr(g, "results", path));
        h5::Id cds = h5::open_dataset(g, "coefficients", path);
        h5::Id ctype = coefficient_row_type();
        std::vector<CoefficientRow> crows(h5::checked_length(cds, path));
        h5::read_all(cds, ctype, crows.data(), path);
        for (const auto& c : crows)
          f.coefficients.push_back(
              FitCoefficient{c.law ? c.law : "", c.name ? c.name : "", c.estimate, c.mean, c.median, c.lo, c.hi});
        if (!crows.empty()) {
          h5::Id space(H5Dget_space(cds), H5Sclose);
          H5Dvlen_reclaim(ctype, space, H5P_DEFAULT, crows.data());
        }
        h5::Id pds = h5::open_dataset(g, "points", path);
        f.points.resize(h5::checked_length(pds, path));
        h5::read_all(pds, fit_point_type(), f.points.data(), path);
        log.fits.push_back(std::move(f));
      }
    }
  } catch (const Hdf5Error& e) {
    throw StoreRefused("'" + path +
                       "' cannot be read as an hpsweep sweep (it was not modified): " + std::string(e.what()));
  } catch (const std::bad_alloc&) {
    throw StoreRefused("'" + path + "' is damaged: its sizes ask for more memory than there is; it was not modified");
  }
  return out;
}

}  // namespace hpsweep
