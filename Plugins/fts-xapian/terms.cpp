// fts-xapian: index terms, and the configuration.

#include "fts_xapian.hpp"

namespace fts_xapian {

namespace {

uint64_t fnv1a(const std::string &s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

std::string hex64(uint64_t v) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(v));
  return std::string(buffer, 16);
}

}  // namespace

std::string unique_term(const std::string &ns, int64_t id) {
  std::string suffix = "\x1f" + std::to_string(id);
  if (1 + ns.size() + suffix.size() <= kMaxTermLength) return "Q" + ns + suffix;
  return "XQ" + hex64(fnv1a(ns)) + suffix;
}

std::string namespace_term(const std::string &ns) {
  if (1 + ns.size() <= kMaxTermLength) return "N" + ns;
  return "XN" + hex64(fnv1a(ns));
}

std::string metadata_term(const std::string &key, const std::string &value) {
  std::string escaped;
  escaped.reserve(key.size());
  for (char c : key) {
    if (c == '\\' || c == '=' || c == '#') escaped += '\\';
    escaped += c;
  }
  if (1 + escaped.size() + 1 + value.size() <= kMaxTermLength) return "M" + escaped + "=" + value;
  if (1 + escaped.size() + 1 + 16 <= kMaxTermLength) return "M" + escaped + "#" + hex64(fnv1a(value));
  return "XM" + hex64(fnv1a(key)) + "#" + hex64(fnv1a(value));
}

std::string encode_id(int64_t id) {
  uint64_t u = static_cast<uint64_t>(id);
  std::string out(8, '\0');
  for (int i = 7; i >= 0; i--) {
    out[static_cast<size_t>(i)] = static_cast<char>(u & 0xff);
    u >>= 8;
  }
  return out;
}

bool decode_id(const std::string &data, int64_t *id) {
  if (data.size() != 8) return false;
  uint64_t u = 0;
  for (unsigned char c : data) u = (u << 8) | c;
  *id = static_cast<int64_t>(u);
  return true;
}

bool generator_stems(const std::string &term) {
  const unsigned mask = (1u << Xapian::Unicode::LOWERCASE_LETTER) | (1u << Xapian::Unicode::TITLECASE_LETTER) |
                        (1u << Xapian::Unicode::MODIFIER_LETTER) | (1u << Xapian::Unicode::OTHER_LETTER);
  Xapian::Utf8Iterator it(term);
  if (it == Xapian::Utf8Iterator()) return false;
  return ((mask >> Xapian::Unicode::get_category(*it)) & 1u) != 0;
}

/// Reads the configuration: a JSON object of the keys above, each at most once.
Config parse_config(orion_str text) {
  Config config;
  using orion_support::JsonValue;
  auto string_value = [](const std::string &key, const JsonValue &v) {
    if (v.kind != JsonValue::String) config_error("'" + key + "' must be a string");
    return v.text;
  };
  auto number_value = [](const std::string &key, const JsonValue &v) {
    if (v.kind != JsonValue::Number) config_error("'" + key + "' must be a number");
    if (!std::isfinite(v.number)) config_error("'" + key + "' must be a finite number");
    return v.number;
  };
  // No plugin prefix: guarded() already starts every message with "fts-xapian create: ".
  orion_support::read_config_object(text, "", "{\"k1\": 1.2, \"b\": 0.75}", [&](const std::string &key, const JsonValue &v) {
    if (key == "path") {
      config.path = string_value(key, v);
      config.has_path = true;
    } else if (key == "k1") {
      config.k1 = number_value(key, v);
    } else if (key == "b") {
      config.b = number_value(key, v);
    } else if (key == "stemmer") {
      config.stemmer = string_value(key, v);
    } else if (key == "stopwords") {
      config.stopwords = string_value(key, v);
    } else {
      config_error("unknown configuration key '" + printable(key) + "'; the keys are path, k1, b, stemmer and stopwords");
    }
  });
  return config;
}

}  // namespace fts_xapian
