// The hpsweep command line: the only `main` of the product. Each subcommand is a thin layer over
// the library (include/hpsweep/...); kCommands lists them once, for dispatch and the usage text.
#include <boost/program_options.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>

#include <filesystem>
#include <fstream>

#include "hpsweep/backends/backend.hpp"
#include "hpsweep/backends/mlp.hpp"
#include "hpsweep/calibrate/calibrate.hpp"
#include "hpsweep/ingest/ingest.hpp"
#include "hpsweep/ingest/lookup_table.hpp"
#include "hpsweep/planner/plan_study.hpp"
#include "hpsweep/reducer/fit.hpp"
#include "hpsweep/replay/replay.hpp"
#include "hpsweep/reports/calibrate_text.hpp"
#include "hpsweep/reports/export.hpp"
#include "hpsweep/reports/fit_text.hpp"
#include "hpsweep/reports/report.hpp"
#include "hpsweep/reports/status.hpp"
#include "hpsweep/run/run.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/store/fit_results.hpp"
#include "hpsweep/store/stored_job.hpp"
#include "hpsweep/store/sweep_store.hpp"
#include "hpsweep/transfer/coordcheck.hpp"
#include "hpsweep/transfer/format.hpp"
#include "hpsweep/transfer/transfer_fit.hpp"
#include "hpsweep/trials/grid_summary.hpp"
#include "hpsweep/trials/trial.hpp"
#include "hpsweep/util/build_info.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/exit_codes.hpp"
#include "hpsweep/util/text.hpp"
#include "hpsweep/version.hpp"

namespace po = boost::program_options;
using namespace hpsweep;

namespace {

std::string joined_command(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) s += (i ? " " : "") + std::string(argv[i]);
  return s;
}

// What every command handler gets: its own arguments, and the whole command line (`run` and
// `ingest` hand argc/argv to MPI and record the command in the sweep file).
struct CommandLine {
  std::vector<std::string> args;
  int& argc;
  char**& argv;
  std::string joined() const { return joined_command(argc, argv); }
};

po::variables_map parse(const po::options_description& visible, const po::positional_options_description& pos,
                        const std::vector<std::string>& args, const char* command) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(visible).positional(pos).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: hpsweep " << command << " " << visible << "\n";
      std::exit(0);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw InputError(std::string("hpsweep ") + command + ": " + e.what());
  }
  return vm;
}

int cmd_run(CommandLine& cl) {
  RunOptions o;
  po::options_description d("options");
  d.add_options()("help,h", "show this help")("job", po::value(&o.job_path)->required(), "job file (INI)")(
      "out,o", po::value(&o.out_path)->required(), "sweep file (HDF5); resumed if it exists")(
      "extend", po::bool_switch(&o.extend), "accept a job that adds grid points to the stored sweep")(
      "retry-failed", po::bool_switch(&o.retry_failed), "rerun FAILED and TIMEOUT trials")(
      "workers,j", po::value(&o.local_workers)->default_value(1), "worker threads when run without an MPI launcher")(
      "progress", po::value(&o.progress)->default_value("auto"), "auto | tty | lines | none")(
      "flush-interval", po::value(&o.fold_interval_s)->default_value(2.0),
      "seconds between folds of the journal into the HDF5 file")("prefetch", po::value(&o.prefetch)->default_value(2),
                                                                 "trials queued per worker")(
      "grace", po::value(&o.grace_s)->default_value(60),
      "after SIGTERM/SIGUSR1/SIGINT, seconds that trials in flight may finish before they are recorded LOST")(
      "drain-before-limit", po::value(&o.drain_before_limit_s)->default_value(0),
      "Slurm only: stop handing out trials this many seconds before the job's time limit")(
      "gpus-per-node", po::value(&o.gpus_per_node)->default_value(0),
      "GPUs of each worker's node for [resources] (default: from CUDA_VISIBLE_DEVICES, Slurm or nvidia-smi)");
  po::positional_options_description pos;
  pos.add("job", 1);
  parse(d, pos, cl.args, "run");
  if (o.gpus_per_node < 0) throw InputError("hpsweep run: --gpus-per-node must be >= 0");
  if (o.local_workers < 1) throw InputError("hpsweep run: --workers must be >= 1");
  if (o.prefetch < 1) throw InputError("hpsweep run: --prefetch must be >= 1");
  if (!(o.fold_interval_s >= 0)) throw InputError("hpsweep run: --flush-interval must be >= 0");
  if (!(o.grace_s >= 0)) throw InputError("hpsweep run: --grace must be >= 0");
  if (o.drain_before_limit_s > 0 && !std::getenv("SLURM_JOB_ID"))
    throw InputError(
        "hpsweep run: --drain-before-limit needs a Slurm allocation (SLURM_JOB_ID is not set); "
        "run it under sbatch or salloc, or drop the option");
  o.command_line = cl.joined();
  return run_sweep(o, cl.argc, cl.argv);
}

int cmd_status(CommandLine& cl) {
  std::string path;
  bool json = false;
  po::options_description d("options");
  d.add_options()("help,h", "show this help")("file", po::value(&path)->required(), "sweep file")(
      "json", po::bool_switch(&json), "machine-readable output");
  po::positional_options_description pos;
  pos.add("file", 1);
  parse(d, pos, cl.args, "status");
  const SweepStatus s = summarize(load_sweep(path, Disagreement::Warn));
  std::cout << (json ? status_json(s) : format_status(s));
  return kExitOk;
}

int cmd_export(CommandLine& cl) {
  std::string path, out_path;
  bool csv = false, jsonl = false, curves = false;
  po::options_description d("options");
  d.add_options()("help,h", "show this help")("file", po::value(&path)->required(), "sweep file")(
      "csv", po::bool_switch(&csv), "CSV with a header row")("jsonl", po::bool_switch(&jsonl), "JSON lines (default)")(
      "curves", po::bool_switch(&curves), "include loss curves (JSON lines only)")(
      "out,o", po::value(&out_path), "write here instead of standard output");
  po::positional_options_description pos;
  pos.add("file", 1);
  parse(d, pos, cl.args, "export");
  if (csv && jsonl) throw InputError("hpsweep export: choose one of --csv and --jsonl");
  if (csv && curves) throw InputError("hpsweep export: --curves needs JSON lines (drop --csv)");
  const SweepLog log = load_sweep(path);
  const ExportFormat format = csv ? ExportFormat::Csv : ExportFormat::JsonLines;
  if (out_path.empty()) {
    export_trials(log, format, curves, std::cout);
  } else {
    std::ofstream out(out_path);
    if (!out) throw InputError("hpsweep export: cannot write '" + out_path + "'");
    export_trials(log, format, curves, out);
  }
  return kExitOk;
}

void print_log_ingest_summary(const std::string& root, const std::string& into, const LogIngestSummary& s) {
  for (const auto& n : s.notes) std::printf("hpsweep: %s\n", n.c_str());
  const std::size_t show = std::min<std::size_t>(s.bad.size(), 10);
  for (std::size_t i = 0; i < show; ++i) std::fprintf(stderr, "bad run %s\n", s.bad[i].c_str());
  if (s.bad.size() > show) std::fprintf(stderr, "... and %zu more bad runs\n", s.bad.size() - show);
  const std::size_t show_unfinished = std::min<std::size_t>(s.unfinished_runs.size(), 10);
  for (std::size_t i = 0; i < show_unfinished; ++i) std::printf("unfinished run %s\n", s.unfinished_runs[i].c_str());
  if (s.unfinished_runs.size() > show_unfinished)
    std::printf("... and %zu more unfinished runs\n", s.unfinished_runs.size() - show_unfinished);
  std::printf("%s: %zu run directories; %zu imported (%zu unfinished, %zu DIVERGED), %zu already in %s, %zu bad\n",
              root.c_str(), s.runs, s.imported, s.unfinished, s.diverged, s.already_present, into.c_str(),
              s.bad.size());
  std::printf("read %s MB in %.2f s on %d worker%s: %.0f runs/s, %.1f MB/s\n", format_short(s.bytes / 1e6).c_str(),
              s.seconds, s.workers, s.workers == 1 ? "" : "s", s.seconds > 0 ? s.runs / s.seconds : 0,
              s.seconds > 0 ? s.bytes / 1e6 / s.seconds : 0);
}

int cmd_ingest(CommandLine& cl) {
  std::string csv, into, map, unit = "sequences", layout;
  CsvIngestOptions o;
  int workers = 1;
  po::options_description d("options");
  d.add_options()("help,h", "show this help")("csv", po::value(&csv)->required(),
                                              "results: a CSV file, or a directory of run directories (with --layout)")(
      "into", po::value(&into)->required(), "sweep file to add to (created if missing)")(
      "layout", po::value(&layout),
      "run directories: auto (default) | jsonl | megatron | tensorboard | lightning | mlflow | hf-trainer | "
      "torchtitan | wandb (examples/ingest/README.md)")("workers,j", po::value(&workers)->default_value(1),
                                                        "run directories without MPI: parser threads")(
      "map", po::value(&map),
      "CSV: FIELD=COLUMN,... for lr, batch, loss, params, tokens (required) and final_loss, wd, seq_len, steps; "
      "run directories: lr=KEY,batch=KEY,params=KEY,tokens=KEY|steps=KEY,seq_len=KEY,wd=KEY,loss=TAG (KEY a dotted "
      "path into the run's config)")("batch-unit", po::value(&unit)->default_value("sequences"), "sequences | tokens")(
      "seq-len", po::value(&o.seq_len)->default_value(2048), "tokens per sequence when no seq_len column")(
      "wd", po::value(&o.wd)->default_value(0.1), "weight decay when no wd column")(
      "diverged-above", po::value(&o.diverged_above)->default_value(0), "loss above which a run is DIVERGED (0: off)")(
      "diverged-ratio", po::value(&o.diverged_ratio)->default_value(1.5),
      "DIVERGED when loss > ratio x the best loss of its (N, D) cell (0: off)")(
      "strict", po::bool_switch(&o.strict), "refuse the whole file if any row is bad");
  po::positional_options_description pos;
  pos.add("csv", 1);
  parse(d, pos, cl.args, "ingest");
  if (std::filesystem::is_directory(csv)) {
    if (layout.empty()) layout = "auto";
    if (workers < 1) throw InputError("hpsweep ingest: --workers must be >= 1");
    LogIngestOptions lo;
    lo.seq_len = o.seq_len;
    lo.wd = o.wd;
    lo.map = map;
    if (unit != "sequences" && unit != "tokens")
      throw InputError("--batch-unit must be 'sequences' or 'tokens', got '" + unit + "'");
    lo.batch_in_tokens = unit == "tokens";
    parse_layout(layout);  // a bad name is an input error before any worker starts
    check_hyper_map(lo.map);
    return ingest_run_logs_on_workers(cl.argc, cl.argv, workers, csv, into, layout, lo, cl.joined(),
                                      [&](const LogIngestSummary& s) { print_log_ingest_summary(csv, into, s); });
  }
  if (!layout.empty())
    throw InputError("hpsweep ingest: --layout is for a directory of runs; '" + csv + "' is not a directory");
  if (map.empty())
    throw InputError("hpsweep ingest: a CSV needs --map FIELD=COLUMN,... (lr, batch, loss, params, tokens)");
  if (unit != "sequences" && unit != "tokens")
    throw InputError("--batch-unit must be 'sequences' or 'tokens', got '" + unit + "'");
  if (o.seq_len < 1) throw InputError("--seq-len must be >= 1");
  o.batch_in_tokens = unit == "tokens";
  o.columns = parse_column_map(map);
  const IngestSummary s = ingest_csv(csv, into, o, cl.joined());
  for (const auto& n : s.notes) std::printf("hpsweep: %s\n", n.c_str());
  const std::size_t show = std::min<std::size_t>(s.skipped.size(), 10);
  for (std::size_t i = 0; i < show; ++i) std::fprintf(stderr, "skipped %s\n", s.skipped[i].c_str());
  if (s.skipped.size() > show) std::fprintf(stderr, "... and %zu more skipped rows\n", s.skipped.size() - show);
  std::printf(
      "%s: %zu rows read; %zu imported (%zu marked DIVERGED), %zu already in %s, %zu duplicate rows, %zu skipped\n",
      csv.c_str(), s.rows, s.imported, s.diverged, s.already_present, into.c_str(), s.duplicates, s.skipped.size());
  return kExitOk;
}

// The fit options `fit` and `report` share: one set of names, defaults and checks.
struct FitArgs {
  FitOptions options;
  std::string select = "asym", resample = "points", holdout = "none";

  void add_to(po::options_description& d) {
    d.add_options()("select", po::value(&select)->default_value("asym"),
                    "per-cell optimum: asym[:EPS] (asymmetric bowl, weighted laws, t intervals), within:EPS (every "
                    "run within EPS of the cell minimum, the Step Law procedure), argmin, bowl[:EPS]")(
        "resamples", po::value(&options.bootstrap.resamples)->default_value(1000), "bootstrap resamples")(
        "seed", po::value(&options.bootstrap.seed)->default_value(0), "bootstrap seed")(
        "resample", po::value(&resample)->default_value("points"), "points (Step Law procedure) | cells")(
        "batch-n-term", po::bool_switch(&options.batch_n_term), "add an N term to the batch-size law")(
        "flops-per-token", po::value(&options.flops_per_token)->default_value(0), "compute form: C = M*D (0: C = 6ND)")(
        "target-params", po::value(&options.target_params)->default_value(0),
        "N of the run to plan (default: job [target])")("target-tokens",
                                                        po::value(&options.target_tokens)->default_value(0),
                                                        "D of the run to plan (default: job [target])")(
        "seq-len", po::value(&options.seq_len)->default_value(0), "sequence length for batch sizes in sequences")(
        "holdout", po::value(&holdout)->default_value("none"), "largest: validate on the largest-compute cells")(
        "variant", po::value(&options.variant)->default_value(""), "fit only this [variants] row of the job");
  }

  // After parsing: checks the values and returns the options. Throws InputError.
  FitOptions parsed() {
    options.selection = parse_selection(select);
    if (resample != "points" && resample != "cells") throw InputError("--resample must be 'points' or 'cells'");
    if (holdout != "none" && holdout != "largest") throw InputError("--holdout must be 'largest' or 'none'");
    if (options.bootstrap.resamples < 0) throw InputError("--resamples must be >= 0");
    options.bootstrap.by_cell = resample == "cells";
    options.holdout_largest = holdout == "largest";
    return options;
  }
};

// A sweep another run holds is not an error for a read-only analysis: warn and go on.
void store_result(const std::string& path, FitRecord record, bool quiet, const char* what) {
  const std::string name = record.name;
  if (const auto refused = store_fit_result(path, std::move(record)))
    std::fprintf(stderr, "hpsweep: warning: the %s was not stored: %s\n", what, refused->c_str());
  else if (!quiet)
    std::cout << "\nstored as /fits/" << name << " in " << path << "\n";
}

// A coverage study of `fit` on the design of a job or sweep file (calibrate/calibrate.hpp).
int cmd_calibrate(CommandLine& cl) {
  const std::vector<std::string>& args = cl.args;
  std::string path, truths, noises = "0.1%,0.15%,0.3%,0.5%";
  bool json = false;
  CalibrationOptions c;
  FitArgs fit;
  po::options_description d("options");
  d.add_options()("help,h", "show this help")("file", po::value(&path)->required(), "job file (.ini) or sweep file");
  fit.add_to(d);
  d.add_options()("replicates", po::value(&c.replicates)->default_value(100), "simulated sweeps per condition")(
      "truth", po::value(&truths),
      "ground truths: symmetric, asymmetric, cubic; for a sweep file also fitted, fitted-symmetric (the landscape "
      "fitted to it, at its measured noise). Default: all that apply")(
      "noise", po::value(&noises)->default_value(noises),
      "relative noise levels of the final loss (fitted truths: their measured noise unless given)")(
      "json", po::bool_switch(&json), "machine-readable output");
  po::positional_options_description pos;
  pos.add("file", 1);
  parse(d, pos, args, "calibrate");
  c.fit = fit.parsed();
  // Bootstrap selections: 200 resamples per replicate unless asked (percentiles, not a p-value).
  if (std::none_of(args.begin(), args.end(), [](const std::string& a) { return a.rfind("--resamples", 0) == 0; }))
    c.fit.bootstrap.resamples = 200;
  c.seed = c.fit.bootstrap.seed;
  c.noises_given =
      std::any_of(args.begin(), args.end(), [](const std::string& a) { return a.rfind("--noise", 0) == 0; });
  const bool ini = path.size() > 4 && path.substr(path.size() - 4) == ".ini";
  std::optional<SweepLog> sweep;
  if (!ini) sweep = load_sweep(path);
  if (truths.empty())
    truths = ini ? "symmetric,asymmetric,cubic" : "symmetric,asymmetric,cubic,fitted,fitted-symmetric";
  std::optional<FitReport> fitted;
  c.truths.clear();
  for (auto t : split(truths, ',')) {
    t = trim(t);
    if (t != "fitted" && t != "fitted-symmetric") {
      c.truths.push_back(truth_by_name(t));
      continue;
    }
    if (!sweep) throw InputError("--truth " + t + ": needs a sweep file (a job file has no results to fit)");
    if (!fitted) {
      FitOptions fo = c.fit;
      fo.holdout_largest = false;
      fitted = fit_sweep(*sweep, fo);
    }
    c.truths.push_back(fitted_truth(*fitted, t == "fitted-symmetric"));
  }
  c.noises.clear();
  for (std::string n : split(noises, ',')) {
    n = trim(n);
    const bool percent = !n.empty() && n.back() == '%';
    if (percent) n.pop_back();
    const double v = parse_number(n, "--noise");
    if (!(v >= 0)) throw InputError("--noise must be non-negative");
    c.noises.push_back(percent ? v / 100 : v);
  }
  const CalibrationDesign design = ini ? design_from_job(load_valid_job(path), path) : design_from_sweep(*sweep, path);
  CalibrationDesign targeted = design;
  if (c.fit.target_params > 0) targeted.target_params = c.fit.target_params;
  if (c.fit.target_tokens > 0) targeted.target_tokens = c.fit.target_tokens;
  const CalibrationReport r = calibrate(targeted, c);
  std::cout << (json ? calibration_json(r) : format_calibration(r));
  return kExitOk;
}

int cmd_fit(CommandLine& cl) {
  std::string path, name;
  bool json = false, no_store = false;
  double target_width = 0;
  bool transfer = false;
  FitArgs fit;
  po::options_description d("options");
  d.add_options()("help,h", "show this help")("file", po::value(&path)->required(), "sweep file");
  fit.add_to(d);
  d.add_options()("json", po::bool_switch(&json), "machine-readable output")(
      "transfer", po::bool_switch(&transfer),
      "fit the transfer exponents eta*(w) = c w^kappa per parametrization on a sweep over widths")(
      "target-width", po::value(&target_width)->default_value(0),
      "--transfer: width to carry the optimum to (default: the width of the job's [target] params)")(
      "name", po::value(&name)->default_value(""), "store the fit as /fits/NAME (default: latest, or transfer)")(
      "no-store", po::bool_switch(&no_store), "do not store the fit");
  po::positional_options_description pos;
  pos.add("file", 1);
  parse(d, pos, cl.args, "fit");
  if (name.empty()) name = transfer ? "transfer" : "latest";
  check_result_name(name);
  FitOptions o = fit.parsed();
  o.transfer = transfer;
  if (target_width < 0) throw InputError("--target-width must not be negative");
  o.target_width = target_width;
  const SweepLog log = load_sweep(path);
  FitRecord record;
  if (o.transfer) {
    const TransferReport r = fit_transfer(log, o);
    std::cout << (json ? transfer_fit_json(r) + "\n" : format_transfer_fit(r));
    record = to_fit_record(r, name, log.results.size());
  } else {
    const FitReport r = fit_sweep(log, o);
    std::cout << (json ? fit_json(r) : format_fit(r));
    record = to_fit_record(r, name, log.results.size());
  }
  if (!no_store) store_result(path, std::move(record), json, "fit");
  return kExitOk;
}

int cmd_report(CommandLine& cl) {
  std::string path;
  bool no_png = false;
  ReportOptions o;
  FitArgs fit;
  po::options_description d("options");
  d.add_options()("help,h", "show this help")("file", po::value(&path)->required(), "sweep file")(
      "out,o", po::value(&o.out_dir)->required(), "report folder (created; open OUT/index.html in a browser)")(
      "gnuplot", po::value(&o.gnuplot)->default_value("gnuplot"), "gnuplot program (name in PATH, or a path)")(
      "no-png", po::bool_switch(&no_png), "render SVG only (no PNG copies for slides)");
  fit.add_to(d);
  po::positional_options_description pos;
  pos.add("file", 1);
  parse(d, pos, cl.args, "report");
  o.fit = fit.parsed();
  o.png = !no_png;
  const SweepLog log = load_sweep(path);
  const ReportResult r = write_report(log, path, o);
  for (const auto& p : r.problems) std::fprintf(stderr, "hpsweep: warning: %s\n", p.c_str());
  if (!r.gnuplot_found)
    std::fprintf(stderr,
                 "hpsweep: warning: figures were not rendered: '%s' was not found (install gnuplot-nox, or give "
                 "--gnuplot PATH); the scripts and data are in %s/figures\n",
                 o.gnuplot.c_str(), o.out_dir.c_str());
  std::printf("%s: %zu of %zu figures rendered; open %s\n", o.out_dir.c_str(), r.rendered, r.figures,
              r.index_path.c_str());
  return kExitOk;
}

int cmd_replay(CommandLine& cl) {
  std::string path, select = "within:0.25%", ranks_text = "2,4,8,16,32,64", variant;
  bool refit = false, timeline = false, whatif = false, plan = false;
  int steps = 10, resamples = 200, gpus_per_node = 0;
  po::options_description d("options (default: all three parts)");
  d.add_options()("help,h", "show this help")("file", po::value(&path)->required(), "sweep file")(
      "refit", po::bool_switch(&refit), "re-fit every stored fit and compare bit for bit")(
      "timeline", po::bool_switch(&timeline), "how the laws and the prediction evolved over the sweep")(
      "what-if", po::bool_switch(&whatif), "simulate the recorded trial durations on other rank counts")(
      "plan", po::bool_switch(&plan), "adaptive sweeps: the planner's rounds, what it chose and why")(
      "select", po::value(&select)->default_value("within:0.25%"), "timeline: per-cell selection")(
      "variant", po::value(&variant)->default_value(""), "timeline: the [variants] row to fit")(
      "steps", po::value(&steps)->default_value(10), "timeline: checkpoints (10 = every 10% of the trials)")(
      "resamples", po::value(&resamples)->default_value(200), "timeline: bootstrap resamples per checkpoint")(
      "ranks", po::value(&ranks_text)->default_value("2,4,8,16,32,64"), "what-if: rank counts (master included)")(
      "gpus-per-node", po::value(&gpus_per_node)->default_value(0),
      "what-if: pack the job's [resources] onto nodes of this many GPUs (one worker rank per node)");
  po::positional_options_description pos;
  pos.add("file", 1);
  parse(d, pos, cl.args, "replay");
  if (!refit && !timeline && !whatif && !plan) refit = timeline = whatif = true;
  if (steps < 1 || steps > 1000) throw InputError("replay: --steps must be in [1, 1000]");
  std::vector<int> ranks;
  for (const auto& r : split(ranks_text, ',')) {
    const double v = parse_number(r, "replay --ranks");
    if (v < 2 || v != std::floor(v)) throw InputError("replay: --ranks needs whole numbers >= 2, got '" + r + "'");
    ranks.push_back(static_cast<int>(v));
  }
  const SweepLog log = load_sweep(path);
  if (plan) std::cout << format_stored_plan(log, path) << "\n";
  if (refit) std::cout << format_refit(refit_stored(log)) << "\n";
  if (timeline) {
    FitOptions o;
    o.selection = parse_selection(select);
    o.bootstrap.resamples = resamples;
    o.variant = variant;
    if (variant.empty() && sweep_variants(log).size() > 1)
      std::cout << "timeline: skipped, the sweep runs " << sweep_variants(log).size()
                << " variants; choose one with --variant NAME\n\n";
    else
      std::cout << format_timeline(replay_timeline(log, o, steps)) << "\n";
  }
  if (gpus_per_node < 0) throw InputError("replay: --gpus-per-node must be >= 0");
  if (whatif) std::cout << format_what_if(what_if(log, ranks, 2, gpus_per_node), recorded_makespan(log));
  return kExitOk;
}

int cmd_coordcheck(CommandLine& cl) {
  std::string path, widths = "64,128,256,512,1024", params = "sp,mup", name = "coordcheck";
  bool json = false, no_store = false;
  CoordCheckOptions o;
  po::options_description d("options");
  d.add_options()("help,h", "show this help")(
      "file", po::value(&path)->required(),
      "job file (mlp backend), or a sweep file: its job is used and the result stored in it")(
      "widths", po::value(&widths)->default_value(widths), "comma-separated widths")(
      "parametrization", po::value(&params)->default_value(params), "comma-separated: sp, mup, umup")(
      "steps", po::value(&o.steps)->default_value(10), "training steps per width")(
      "seeds", po::value(&o.seeds)->default_value(3), "seeds averaged per width")(
      "lr", po::value(&o.lr)->default_value(0), "constant learning rate (0: geometric middle of the job's lr grid)")(
      "batch", po::value(&o.batch)->default_value(0), "batch (0: the job's smallest)")(
      "json", po::bool_switch(&json), "machine-readable output, every step and layer")(
      "name", po::value(&name)->default_value(name), "sweep file: store as /fits/NAME")(
      "no-store", po::bool_switch(&no_store), "sweep file: do not store the result");
  po::positional_options_description pos;
  pos.add("file", 1);
  parse(d, pos, cl.args, "coordcheck");
  check_result_name(name);
  o.widths.clear();
  for (const double v : parse_number_list(widths, "--widths")) {
    if (v != std::floor(v)) throw InputError("--widths: '" + format_short(v) + "' is not a whole number");
    o.widths.push_back(static_cast<std::int64_t>(v));
  }
  o.parametrizations.clear();
  for (const auto& p : split(params, ',')) o.parametrizations.push_back(to_lower(trim(p)));
  const bool sweep_file = is_sweep_file(path);
  const JobSpec job = sweep_file ? required_stored_job(load_sweep(path), path) : load_valid_job(path);
  const CoordCheckResult r = coord_check(job, o);
  std::cout << (json ? coord_check_json(r) + "\n" : format_coord_check(r));
  if (sweep_file && !no_store) store_result(path, to_fit_record(r, name), json, "coordinate check");
  return kExitOk;
}

int cmd_transfer(CommandLine& cl) {
  BaseModel base;
  TargetModel target;
  TransferOptions t;
  std::string param = "mup", wd_rule = "none";
  bool json = false;
  po::options_description d("options");
  d.add_options()("help,h", "show this help")("param", po::value(&param)->default_value("mup"), "sp | mup | umup")(
      "wd-rule", po::value(&wd_rule)->default_value("none"), "hidden weight decay vs width: none | linear | sqrt")(
      "depth-alpha", po::value(&t.depth_alpha)->default_value(0),
      "0 (no depth rule), 0.5 (Depth-muP) ... 1 (CompleteP)")("base-width", po::value(&base.width)->default_value(256),
                                                              "the tuned proxy's width (d_model)")(
      "base-depth", po::value(&base.depth)->default_value(4), "the tuned proxy's depth (blocks)")(
      "base-ffn", po::value(&base.ffn_width)->default_value(0), "the proxy's FFN width (0: 4 x width)")(
      "lr", po::value(&base.lr)->default_value(1e-3), "tuned Adam learning rate")(
      "wd", po::value(&base.wd)->default_value(0.1), "tuned weight decay")(
      "init-std", po::value(&base.init_std)->default_value(0.02), "tuned init std")(
      "eps", po::value(&base.eps)->default_value(1e-8), "Adam epsilon")(
      "input-mult", po::value(&base.input_multiplier)->default_value(1), "input/embedding multiplier alpha_in")(
      "output-mult", po::value(&base.output_multiplier)->default_value(1), "output multiplier alpha_out")(
      "head-dim", po::value(&base.attention_head_dim)->default_value(0), "attention head dim (0: no attention row)")(
      "decoupled-wd", po::bool_switch(&base.decoupled_wd), "weight decay applied without the learning rate")(
      "width", po::value(&target.width)->required(), "target width")(
      "depth", po::value(&target.depth)->default_value(0), "target depth (0: the base depth)")(
      "ffn", po::value(&target.ffn_width)->default_value(0), "target FFN width (0: the base ratio)")(
      "json", po::bool_switch(&json), "one object per parameter group, for training frameworks");
  parse(d, po::positional_options_description(), cl.args, "transfer");
  t.param = parse_parametrization(param);
  t.wd_rule = parse_wd_rule(wd_rule);
  const TransferTable table = transfer(base, target, t);
  std::cout << (json ? transfer_json(table) : format_transfer(table));
  return kExitOk;
}

int cmd_predict(CommandLine& cl) {
  std::string law;
  double n = 0, tokens = 0;
  std::int64_t seq_len = 2048;
  po::options_description d("options");
  d.add_options()("help,h", "show this help")("law", po::value(&law)->required(), "steplaw | deepseek")(
      "params", po::value(&n)->required(), "N, non-embedding parameters")("tokens", po::value(&tokens)->required(),
                                                                          "D, training tokens")(
      "seq-len", po::value(&seq_len)->default_value(2048), "tokens per sequence");
  parse(d, po::positional_options_description(), cl.args, "predict");
  if (!(n > 0) || !(tokens > 0) || seq_len < 1)
    throw InputError("predict: --params, --tokens and --seq-len must be positive");
  double lr = 0, b = 0;
  if (law == "steplaw") {
    lr = steplaw_lr(n, tokens);
    b = steplaw_batch_tokens(tokens);
  } else if (law == "deepseek") {
    lr = deepseek_lr(6 * n * tokens);
    b = deepseek_batch_tokens(6 * n * tokens);
  } else {
    throw InputError("predict: unknown law '" + law + "' (steplaw or deepseek)");
  }
  std::printf("%s law at N=%s, D=%s:\n  lr     %.4g\n  batch  %.4g tokens = %.0f sequences of %lld\n", law.c_str(),
              format_short(n).c_str(), format_short(tokens).c_str(), lr, b, b / static_cast<double>(seq_len),
              static_cast<long long>(seq_len));
  return kExitOk;
}

int cmd_validate(CommandLine& cl) {
  std::string path;
  po::options_description d("options");
  d.add_options()("help,h", "show this help")("job", po::value(&path)->required(), "job file");
  po::positional_options_description pos;
  pos.add("job", 1);
  parse(d, pos, cl.args, "validate");
  const JobSpec job = load_valid_job(path);
  const GridSummary g = summarize_grid(job, expand_grid(job));
  std::printf("%s: valid. sweep '%s', backend %s\n", path.c_str(), job.name.c_str(), job.backend_kind.c_str());
  std::string variants;
  for (const auto& v : g.variants) variants += (variants.empty() ? "" : ", ") + v;
  if (g.table_points > 0)
    std::printf(
        "  the lookup table's %zu points (%zu model sizes, %zu token budgets, %zu lr, %zu batch, %zu wd) x %d "
        "repeats = %zu trials\n",
        g.table_points, g.params, g.tokens, g.lr, g.batch, g.wd, g.repeats, g.trials);
  else
    std::printf(
        "  %zu model sizes x %zu token budgets x %zu lr x %zu batch x %zu wd x %d repeats%s = %zu trials\n", g.params,
        g.tokens, g.lr, g.batch, g.wd, g.repeats,
        variants.empty() ? "" : (" x " + std::to_string(g.variants.size()) + " variants (" + variants + ")").c_str(),
        g.trials);
  std::printf("  total proxy compute %s FLOPs (6ND summed)\n", format_short(g.compute).c_str());
  if (job.resources.given()) {
    // What the packing will hand out: trials per (GPUs, nodes) request.
    std::map<std::pair<int, int>, std::size_t> requests;
    for (const auto& t : expand_grid(job)) {
      const TrialResources r = job.resources_for(t.point.params, t.point.tokens);
      ++requests[{r.gpus, r.nodes}];
    }
    std::string parts;
    for (const auto& [k, n] : requests)
      parts += (parts.empty() ? "" : ", ") + std::to_string(n) + " x " + std::to_string(k.first) + " GPU" +
               (k.first == 1 ? "" : "s") + (k.second > 0 ? " on " + std::to_string(k.second) + " nodes" : "");
    std::printf("  [resources]: %s per trial\n", parts.c_str());
  }
  return kExitOk;
}

int cmd_plan(CommandLine& cl) {
  std::string path, budgets_text, report_dir, gnuplot_program = "gnuplot";
  bool rounds = false;
  po::options_description d("options");
  d.add_options()("help,h", "show this help")("file", po::value(&path)->required(),
                                              "job file with [adaptive] (simulate), or an adaptive sweep file (list)")(
      "budgets", po::value(&budgets_text)->default_value(""),
      "fractions of the grid's compute to compare, e.g. 0.05,0.1,0.2,0.5,1 (default: the job's budget)")(
      "rounds", po::bool_switch(&rounds), "also list the rounds of the plan at the job's budget")(
      "report", po::value(&report_dir),
      "also write a report folder (DIR/index.html): the listing and the target's interval against compute")(
      "gnuplot", po::value(&gnuplot_program), "gnuplot program for --report");
  po::positional_options_description pos;
  pos.add("file", 1);
  parse(d, pos, cl.args, "plan");
  // --report: the listing and, for lr and B, the target's interval against compute (DIR/index.html).
  auto write_plan_report = [&](const SweepLog& log, const PlanStudy& study, const std::string& listing) {
    ReportOptions options;
    options.out_dir = report_dir;
    options.gnuplot = gnuplot_program;
    const ReportResult r =
        write_report(log, path, options, {[&](const ReportInput&) { return plan_report_section(study, listing); }});
    std::printf("\nreport: %s (%zu of %zu figures rendered)\n", r.index_path.c_str(), r.rendered, r.figures);
    for (const auto& p : r.problems) std::printf("  %s\n", p.c_str());
  };
  if (is_sweep_file(path)) {
    const SweepLog log = load_sweep(path);
    const std::string listing = format_stored_plan(log, path);
    std::fputs(listing.c_str(), stdout);
    if (!report_dir.empty()) write_plan_report(log, stored_plan_study(log, path), listing);
    return kExitOk;
  }
  std::vector<double> budgets;
  if (!budgets_text.empty())
    for (const auto& b : split(budgets_text, ',')) {
      const double v = parse_number(b, "plan --budgets");
      if (v <= 0 || v > 1) throw InputError("plan: --budgets are fractions in (0, 1], got '" + b + "'");
      budgets.push_back(v);
    }
  const JobSpec job = load_valid_job(path);
  const PlanStudy study = run_plan_study(job, budgets);
  std::fputs(format_plan_study(study, rounds).c_str(), stdout);
  if (!report_dir.empty()) {
    SweepLog no_sweep;  // the plan ran in virtual time: nothing was stored
    no_sweep.job_path = job.path;
    no_sweep.job_text = job.text;
    write_plan_report(no_sweep, study, format_plan_study(study, true));
  }
  return kExitOk;
}

int cmd_version(CommandLine&) {
  std::fputs(build_info().c_str(), stdout);
  // What the mlp trainer runs on this CPU: both are picked at load time, not by the build flags.
  std::printf("mlp GEMM: %s\n", mlp_gemm_library().c_str());
  std::printf("mlp elementwise kernels: %s\n", mlp_elementwise_isa().c_str());
  return kExitOk;
}

int cmd_help(CommandLine& cl);

// The commands: dispatch and the usage text come from this one table. A command may have a row
// per way to call it (fit, fit --transfer); dispatch takes its first row.
struct Command {
  const char* name;
  const char* synopsis;  // shown after the name in the usage text
  const char* summary;
  int (*handler)(CommandLine&);
};

const Command kCommands[] = {
    {"run", "JOB.ini --out FILE.h5", "run (or resume) a sweep; under mpirun/srun rank 0 is the master", cmd_run},
    {"status", "FILE.h5 [--json]", "states, per-cell best losses and launches of a sweep", cmd_status},
    {"validate", "JOB.ini", "check a job file and print the size of its grid", cmd_validate},
    {"export", "FILE.h5 [--csv]", "every trial record as JSON lines (default) or CSV", cmd_export},
    {"fit", "FILE.h5 [--target-params N --target-tokens D]", "fit the hyperparameter laws and predict for the target",
     cmd_fit},
    {"report", "FILE.h5 --out DIR", "figures and index.html: loss maps, laws, transfer, sweep health", cmd_report},
    {"replay", "FILE.h5", "re-fit stored fits, timeline of the laws, what-if scheduling", cmd_replay},
    {"plan", "JOB.ini|FILE.h5 [--budgets 0.1,0.2,...]",
     "adaptive sweeps: simulate the plan in virtual time, or list a sweep's plan", cmd_plan},
    {"calibrate", "JOB.ini|FILE.h5", "coverage study of the fit on that design: bias, RMSE, coverage", cmd_calibrate},
    {"fit", "FILE.h5 --transfer", "transfer exponents eta*(w) = c w^kappa per parametrization", cmd_fit},
    {"transfer", "--width W ...", "per-group hyperparameters of the target under muP/SP/u-muP rules", cmd_transfer},
    {"coordcheck", "JOB.ini|FILE.h5", "muP coordinate check: activation size vs width per parametrization",
     cmd_coordcheck},
    {"predict", "--law steplaw|deepseek --params N --tokens D", "published laws, no sweep needed", cmd_predict},
    {"ingest", "FILE.csv --into FILE.h5 --map lr=..,batch=..,loss=..,params=..,tokens=..",
     "import results that runs produced elsewhere", cmd_ingest},
    {"version", "", "versions of hpsweep and its libraries, and the kernels' instruction set", cmd_version},
    {"help", "[COMMAND]", "this list, or the options of one command", cmd_help},
};

std::string usage() {
  constexpr std::size_t kSummaryColumn = 30;
  std::string out = "usage: hpsweep <command> [options]\n\ncommands:\n";
  for (const Command& c : kCommands) {
    std::string row = std::string("  ") + c.name + (*c.synopsis ? " " : "") + c.synopsis;
    // A long synopsis gets its summary on the next line, in the same column.
    row += row.size() + 2 <= kSummaryColumn ? std::string(kSummaryColumn - row.size(), ' ')
                                            : "\n" + std::string(kSummaryColumn, ' ');
    out += row + c.summary + "\n";
  }
  return out + "\nrun 'hpsweep <command> --help' for the options of a command\n";
}

const Command* find_command(const std::string& name) {
  for (const Command& c : kCommands)
    if (name == c.name) return &c;
  return nullptr;
}

int cmd_help(CommandLine& cl) {
  if (cl.args.empty()) {
    std::fputs(usage().c_str(), stdout);
    return kExitOk;
  }
  const Command* command = find_command(cl.args.front());
  if (!command || command->handler == cmd_help) {
    std::fprintf(stderr, "hpsweep help: unknown command '%s'\n\n%s", cl.args.front().c_str(), usage().c_str());
    return kExitBadInput;
  }
  CommandLine options{{"--help"}, cl.argc, cl.argv};
  return command->handler(options);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(usage().c_str(), argc < 2 ? stderr : stdout);
    return argc < 2 ? kExitBadInput : kExitOk;
  }
  const std::string name = std::string(argv[1]) == "--version" ? "version" : argv[1];
  CommandLine cl{std::vector<std::string>(argv + 2, argv + argc), argc, argv};
  install_lookup_table_reader();  // kind = lookup jobs read their tables through ingest/ and store/
  try {
    if (const Command* command = find_command(name)) return command->handler(cl);
    std::fprintf(stderr, "hpsweep: unknown command '%s'\n\n%s", name.c_str(), usage().c_str());
    return kExitBadInput;
  } catch (const Error& e) {
    std::fprintf(stderr, "hpsweep: error: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hpsweep: error: %s\n", e.what());
    return kExitError;
  }
}
