// WWW-Authenticate parsing, token answers and base64 (OpenSSL's EVP codec).
#include "registry/auth.h"

#include <openssl/evp.h>

#include <cctype>

#include "base/error.h"
#include "base/json.h"
#include "base/strings.h"

namespace builder::registry {

std::string Challenge::param(const std::string& key) const {
  auto it = params.find(key);
  return it == params.end() ? std::string() : it->second;
}

namespace {

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~/:").find(c) != std::string_view::npos;
}

void skip_ws(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

}  // namespace

std::vector<Challenge> parse_www_authenticate(std::string_view s) {
  std::vector<Challenge> out;
  size_t i = 0;
  while (i < s.size()) {
    skip_ws(s, i);
    while (i < s.size() && (s[i] == ',' || s[i] == ' ')) ++i;
    size_t start = i;
    while (i < s.size() && is_token_char(s[i])) ++i;
    if (i == start) {
      ++i;  // junk: skip a character and resynchronise
      continue;
    }
    std::string word(s.substr(start, i - start));
    skip_ws(s, i);
    if (i < s.size() && s[i] == '=') {
      // key=value belongs to the current challenge.
      ++i;
      skip_ws(s, i);
      std::string value;
      if (i < s.size() && s[i] == '"') {
        ++i;
        while (i < s.size() && s[i] != '"') {
          if (s[i] == '\\' && i + 1 < s.size()) ++i;
          value += s[i++];
        }
        if (i < s.size()) ++i;  // closing quote
      } else {
        size_t vs = i;
        while (i < s.size() && s[i] != ',' && s[i] != ' ') ++i;
        value = std::string(s.substr(vs, i - vs));
      }
      if (!out.empty()) out.back().params[base::to_lower(word)] = value;
      skip_ws(s, i);
      if (i < s.size() && s[i] == ',') ++i;
    } else {
      out.push_back(Challenge{base::to_lower(word), {}});
    }
  }
  return out;
}

Token parse_token_response(std::string_view body) {
  base::Json j;
  try {
    j = base::Json::parse(body);
  } catch (const std::exception&) {
    throw base::Error("the token server's answer is not JSON");
  }
  Token t;
  if (j.is_object() && j.contains("token") && j["token"].is_string() && !j["token"].get<std::string>().empty())
    t.token = j["token"].get<std::string>();
  else if (j.is_object() && j.contains("access_token") && j["access_token"].is_string())
    t.token = j["access_token"].get<std::string>();
  if (t.token.empty()) throw base::Error("the token server's answer has no token");
  if (j.contains("expires_in") && j["expires_in"].is_number_integer()) t.expires_in = j["expires_in"].get<long>();
  if (t.expires_in < 60) t.expires_in = 60;
  return t;
}

std::string base64_encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(n);
  return out;
}

std::string base64_decode(std::string_view data) {
  std::string in(base::trim(data));
  if (in.size() % 4 != 0) throw base::Error("malformed base64");
  if (in.empty()) return {};
  std::string out(in.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) throw base::Error("malformed base64");
  // EVP_DecodeBlock counts padding bytes as zeros; drop them.
  size_t pad = 0;
  if (in.back() == '=') ++pad;
  if (in.size() >= 2 && in[in.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

}  // namespace builder::registry
