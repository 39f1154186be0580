#include "fixture.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace golden {
namespace {

[[noreturn]] void fail(const std::string& path, int line, const std::string& msg) {
  std::ostringstream os;
  os << path << ":" << line << ": " << msg;
  throw std::runtime_error(os.str());
}

std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream is(s);
  std::string tok;
  while (is >> tok) out.push_back(tok);
  return out;
}

bool parse_int64(const std::string& s, int64_t* v) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long r = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  *v = static_cast<int64_t>(r);
  return true;
}

void strip_cr(std::string* s) {
  if (!s->empty() && s->back() == '\r') s->pop_back();
}

}  // namespace

int64_t Fixture::meta_int(const std::string& key) const {
  auto it = meta.find(key);
  if (it == meta.end()) throw std::runtime_error("fixture '" + name + "': missing meta key '" + key + "'");
  int64_t v = 0;
  if (!parse_int64(it->second, &v))
    throw std::runtime_error("fixture '" + name + "': meta key '" + key + "' is not an integer: '" + it->second + "'");
  return v;
}

const std::string& Fixture::meta_str(const std::string& key) const {
  auto it = meta.find(key);
  if (it == meta.end()) throw std::runtime_error("fixture '" + name + "': missing meta key '" + key + "'");
  return it->second;
}

bool Fixture::has(const std::string& tensor) const {
  return tensors.count(tensor) != 0;
}

const Tensor& Fixture::at(const std::string& tensor) const {
  auto it = tensors.find(tensor);
  if (it == tensors.end()) throw std::runtime_error("fixture '" + name + "': no tensor '" + tensor + "'");
  return it->second;
}

std::vector<const CellLine*> Fixture::cells_of(const std::string& dir) const {
  std::vector<const CellLine*> out;
  for (const auto& c : cells)
    if (c.dir == dir) out.push_back(&c);
  std::stable_sort(out.begin(), out.end(), [](const CellLine* a, const CellLine* b) { return a->layer < b->layer; });
  return out;
}

Fixture load_fixture(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open fixture file");
  Fixture fx;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    strip_cr(&line);
    auto toks = split_ws(line);
    if (toks.empty() || toks[0][0] == '#') continue;
    const std::string& kw = toks[0];
    if (kw == "cell") {
      if (toks.size() < 3) fail(path, lineno, "cell line needs: cell <dir> <layer> [key=value ...]");
      CellLine c;
      c.dir = toks[1];
      if (c.dir != "fw" && c.dir != "bw") fail(path, lineno, "cell dir must be fw or bw, got '" + c.dir + "'");
      int64_t layer = 0;
      if (!parse_int64(toks[2], &layer) || layer < 0) fail(path, lineno, "bad cell layer '" + toks[2] + "'");
      c.layer = static_cast<int>(layer);
      for (size_t i = 3; i < toks.size(); ++i) {
        auto eq = toks[i].find('=');
        if (eq == std::string::npos || eq == 0) fail(path, lineno, "bad cell attribute '" + toks[i] + "'");
        c.attrs[toks[i].substr(0, eq)] = toks[i].substr(eq + 1);
      }
      fx.cells.push_back(std::move(c));
    } else if (kw == "tfname") {
      if (toks.size() != 3) fail(path, lineno, "tfname line needs: tfname <tensor> <tf variable name>");
      fx.tf_names[toks[1]] = toks[2];
    } else if (kw == "tensor") {
      if (toks.size() < 3) fail(path, lineno, "tensor line needs: tensor <name> <ndim> <dims...>");
      const std::string tname = toks[1];
      int64_t ndim = 0;
      if (!parse_int64(toks[2], &ndim) || ndim < 0) fail(path, lineno, "bad ndim '" + toks[2] + "'");
      if (static_cast<int64_t>(toks.size()) != 3 + ndim)
        fail(path, lineno, "tensor '" + tname + "': ndim does not match number of dims");
      Tensor t;
      int64_t count = 1;
      for (int64_t i = 0; i < ndim; ++i) {
        int64_t d = 0;
        if (!parse_int64(toks[3 + i], &d) || d < 0)
          fail(path, lineno, "tensor '" + tname + "': bad dim '" + toks[3 + i] + "'");
        t.dims.push_back(d);
        count *= d;
      }
      if (fx.tensors.count(tname)) fail(path, lineno, "duplicate tensor '" + tname + "'");
      std::string vals;
      if (!std::getline(in, vals)) fail(path, lineno + 1, "tensor '" + tname + "': missing values line");
      ++lineno;
      strip_cr(&vals);
      t.values.reserve(static_cast<size_t>(count));
      const char* p = vals.c_str();
      for (;;) {
        while (*p == ' ' || *p == '\t') ++p;
        if (*p == '\0') break;
        char* end = nullptr;
        double v = std::strtod(p, &end);
        if (end == p || (*end != '\0' && *end != ' ' && *end != '\t'))
          fail(path, lineno, "tensor '" + tname + "': bad number near '" + std::string(p).substr(0, 24) + "'");
        t.values.push_back(v);
        p = end;
      }
      if (static_cast<int64_t>(t.values.size()) != count) {
        std::ostringstream os;
        os << "tensor '" << tname << "': expected " << count << " values, got " << t.values.size();
        fail(path, lineno, os.str());
      }
      fx.tensors.emplace(tname, std::move(t));
    } else {
      if (toks.size() != 2) fail(path, lineno, "header line must be '<key> <value>', got '" + line + "'");
      if (kw == "name") fx.name = toks[1];
      fx.meta[kw] = toks[1];
    }
  }
  if (fx.name.empty()) fail(path, lineno, "fixture has no 'name' line");
  return fx;
}

std::vector<std::string> list_fixtures(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) throw std::runtime_error(dir + ": cannot list fixture directory: " + ec.message());
  for (const auto& e : it) {
    if (!e.is_regular_file()) continue;
    if (e.path().extension() == ".txt") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace golden
