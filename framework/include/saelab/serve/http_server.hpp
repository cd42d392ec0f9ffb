#pragma once
// A small HTTP/1.1 server (Boost.Beast) for the local explorer, built so that no client can crash
// it or hold it:
//   - a whole request (headers and body) must arrive within request_timeout, else the connection
//     is closed (a slow-loris client waits that long, no longer); an idle keep-alive connection
//     the same;
//   - headers over max_header_bytes get 431, a body over max_body_bytes 413, a malformed request
//     400, each closing the connection;
//   - at most max_connections are open; more are answered 503 and closed;
//   - heavy requests (the model) run one at a time on a worker thread; while max_queued are
//     waiting or running, more get 503 with Retry-After at once;
//   - a handler that throws gives 500 with the message; the server goes on.
// Responses carry the common headers given (the explorer's CSP), and every one says
// Cache-Control: no-store.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "saelab/core/export.hpp"

namespace saelab {

struct SAELAB_API HttpLimits {
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 64 * 1024;
  std::chrono::milliseconds request_timeout{10000};
  std::size_t max_connections = 128;
  std::size_t max_queued = 4;
};

struct SAELAB_API HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // the target before '?', percent-escapes left as they are
  std::string query;
  std::string content_type;
  std::string body;
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct SAELAB_API HttpResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  HttpHeaders headers;
};

// {"error": message, "status": status} with that status.
SAELAB_API HttpResponse json_error(unsigned status, const std::string& message);

// One request read from bytes with the server's parser and limits: the request, or the error
// response the server sends instead (400 malformed or incomplete, 413 body, 431 headers).
struct SAELAB_API HttpParse {
  std::optional<HttpRequest> request;
  HttpResponse error;
};
SAELAB_API HttpParse parse_http_request(std::string_view bytes, const HttpLimits& limits);

struct SAELAB_API HttpRoutes {
  std::function<bool(const HttpRequest&)> heavy;           // true: queue it for the worker thread
  std::function<HttpResponse(const HttpRequest&)> handle;  // may throw; see above
};

class SAELAB_API HttpServer {
 public:
  // Binds host:port (port 0: any free port). Throws Error naming the address when it cannot.
  HttpServer(const std::string& host, unsigned short port, HttpLimits limits, HttpRoutes routes,
             HttpHeaders common_headers);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  unsigned short port() const;
  // Serves on `io_threads` threads until stop(), SIGINT or SIGTERM.
  void run(int io_threads = 2);
  void stop();

  struct Impl;  // opaque: Boost.Beast stays out of this header

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace saelab
