// Helpers the C++ plugins share: errors at the ABI boundary, host logging, and a strict reader
// for the flat JSON object a plugin receives as its configuration.
//
// Header only, C++17 and the C++ standard library; include it after <orion_plugin.h>. It is not
// part of the ABI: a plugin may use it or not.

#ifndef ORION_PLUGIN_SUPPORT_HPP
#define ORION_PLUGIN_SUPPORT_HPP

#include <orion_plugin.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <string>
#include <system_error>
#include <unordered_set>
#include <utility>

namespace orion_support {

/// A failure with the status and message an ABI call returns. Thrown inside a plugin and caught
/// at the ABI boundary; nothing ever propagates into C.
struct Failure {
  orion_status status;
  std::string message;
};

[[noreturn]] inline void fail(orion_status status, std::string message) { throw Failure{status, std::move(message)}; }

/// Writes the concatenation of `parts` (NULL parts skipped) into `err`, truncated on a UTF-8
/// boundary. Never allocates, never throws.
inline void write_error(orion_error *err, std::initializer_list<const char *> parts) noexcept {
  if (err == nullptr) return;
  const size_t cap = ORION_ERROR_MESSAGE_CAPACITY - 1;
  size_t n = 0;
  for (const char *part : parts) {
    if (part == nullptr) continue;
    size_t len = std::strlen(part);
    size_t take = std::min(len, cap - n);
    if (take < len) {
      while (take > 0 && (static_cast<unsigned char>(part[take]) & 0xC0) == 0x80) --take;
    }
    std::memcpy(err->message + n, part, take);
    n += take;
  }
  err->message[n] = '\0';
}

/// Logs through the host, if it offers logging.
inline void host_log(const orion_host_api *host, orion_host_ctx *ctx, int32_t level, const std::string &message) noexcept {
  if (host != nullptr && host->log != nullptr) host->log(ctx, level, orion_str{message.data(), message.size()});
}

/// One JSON value as the configuration reader returns it.
struct JsonValue {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  double number = 0;
  bool boolean = false;
  std::string text;  // String: the decoded value; Number: the literal
};

/// A strict JSON reader over a borrowed buffer. Errors are ORION_ERR_CONFIG failures naming the
/// byte offset and an example of a valid configuration, prefixed with `plugin: ` unless `plugin`
/// is empty (for plugins whose boundary adds their own prefix).
class JsonReader {
 public:
  JsonReader(const char *begin, const char *end, std::string plugin, std::string example)
      : begin_(begin), p_(begin), end_(end), prefix_(plugin.empty() ? std::string() : plugin + ": "), example_(std::move(example)) {}

  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool at_end() {
    skip_ws();
    return p_ == end_;
  }
  bool consume(char c) {
    skip_ws();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  [[noreturn]] void error(const std::string &what) {
    fail(ORION_ERR_CONFIG, prefix_ + "the configuration is not valid JSON (" + what + " at byte " + std::to_string(p_ - begin_) +
                               "); give a JSON object such as " + example_);
  }

  std::string string() {
    skip_ws();
    if (p_ >= end_ || *p_ != '"') error("expected a string");
    ++p_;
    std::string out;
    while (true) {
      if (p_ >= end_) error("unterminated string");
      unsigned char c = static_cast<unsigned char>(*p_++);
      if (c == '"') return out;
      if (c < 0x20) error("control character in a string");
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        continue;
      }
      if (p_ >= end_) error("unterminated escape");
      char e = *p_++;
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') error("unpaired surrogate in \\u escape");
            p_ += 2;
            uint32_t low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) error("unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            error("unpaired surrogate in \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default: error("unknown escape");
      }
    }
  }

  JsonValue value(int depth) {
    if (depth > 64) error("nesting too deep");
    skip_ws();
    if (p_ >= end_) error("expected a value");
    JsonValue v;
    char c = *p_;
    if (c == '"') {
      v.kind = JsonValue::String;
      v.text = string();
    } else if (c == '{') {
      ++p_;
      v.kind = JsonValue::Object;
      if (consume('}')) return v;
      do {
        string();
        if (!consume(':')) error("expected ':'");
        value(depth + 1);
      } while (consume(','));
      if (!consume('}')) error("expected ',' or '}'");
    } else if (c == '[') {
      ++p_;
      v.kind = JsonValue::Array;
      if (consume(']')) return v;
      do value(depth + 1);
      while (consume(','));
      if (!consume(']')) error("expected ',' or ']'");
    } else if (literal("true")) {
      v.kind = JsonValue::Bool;
      v.boolean = true;
    } else if (literal("false")) {
      v.kind = JsonValue::Bool;
    } else if (literal("null")) {
      v.kind = JsonValue::Null;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      number(v);
    } else {
      error("unexpected character");
    }
    return v;
  }

 private:
  const char *begin_;
  const char *p_;
  const char *end_;
  std::string prefix_;
  std::string example_;

  void number(JsonValue &v) {
    v.kind = JsonValue::Number;
    const char *start = p_;
    if (*p_ == '-') ++p_;
    if (p_ < end_ && *p_ == '0') {
      ++p_;
    } else if (p_ < end_ && *p_ >= '1' && *p_ <= '9') {
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    } else {
      error("malformed number");
    }
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (p_ >= end_ || *p_ < '0' || *p_ > '9') error("malformed number");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ >= end_ || *p_ < '0' || *p_ > '9') error("malformed number");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    v.text.assign(start, p_);
    auto result = std::from_chars(start, p_, v.number);
    if (result.ec == std::errc::result_out_of_range) v.number = start[0] == '-' ? -HUGE_VAL : HUGE_VAL;
    else if (result.ec != std::errc() || result.ptr != p_) error("malformed number");
  }

  bool literal(const char *word) {
    size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) >= n && std::memcmp(p_, word, n) == 0) {
      p_ += n;
      return true;
    }
    return false;
  }
  uint32_t hex4() {
    if (end_ - p_ < 4) error("short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
      char h = *p_++;
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<uint32_t>(h - 'A' + 10);
      else error("bad hex digit in \\u escape");
    }
    return v;
  }
  static void append_utf8(std::string &out, uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
};

/// Reads a configuration: empty text, or one JSON object whose keys are each given once. Calls
/// `on_key(key, value)` per member; the callback refuses unknown keys and wrong values. Messages
/// are prefixed with `plugin: ` unless `plugin` is empty.
template <class OnKey>
void read_config_object(orion_str text, const std::string &plugin, const std::string &example, OnKey &&on_key) {
  if (text.len == 0) return;
  const std::string prefix = plugin.empty() ? std::string() : plugin + ": ";
  if (text.ptr == nullptr) fail(ORION_ERR_CONFIG, prefix + "the configuration has a NULL pointer and a non-zero length");
  JsonReader reader(text.ptr, text.ptr + text.len, plugin, example);
  if (reader.at_end()) return;
  if (!reader.consume('{')) fail(ORION_ERR_CONFIG, prefix + "the configuration must be a JSON object, e.g. " + example);
  std::unordered_set<std::string> seen;
  if (!reader.consume('}')) {
    do {
      std::string key = reader.string();
      if (!reader.consume(':')) reader.error("expected ':'");
      JsonValue value = reader.value(0);
      if (!seen.insert(key).second) fail(ORION_ERR_CONFIG, prefix + "configuration key '" + key.substr(0, 64) + "' is given twice; keep one");
      on_key(key, value);
    } while (reader.consume(','));
    if (!reader.consume('}')) reader.error("expected ',' or '}'");
  }
  if (!reader.at_end()) reader.error("unexpected text after the object");
}

}  // namespace orion_support

#endif  // ORION_PLUGIN_SUPPORT_HPP
