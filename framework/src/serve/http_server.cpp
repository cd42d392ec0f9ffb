#include "saelab/serve/http_server.hpp"

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "saelab/core/error.hpp"
#include "saelab/core/log.hpp"

namespace saelab {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

HttpResponse json_error(unsigned status, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.body = nlohmann::json{{"error", message}, {"status", status}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

namespace {

using RequestParser = http::request_parser<http::string_body>;

void apply_limits(RequestParser& parser, const HttpLimits& limits) {
  parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  parser.body_limit(limits.max_body_bytes);
}

// The answer to a request that could not be read: 413, 431 or 400.
HttpResponse read_error_response(beast::error_code ec, const HttpLimits& limits) {
  if (ec == http::error::body_limit)
    return json_error(413, cat("the request body exceeds the limit of ", limits.max_body_bytes, " bytes"));
  if (ec == http::error::header_limit)
    return json_error(431,
                      cat("the request headers exceed the limit of ", limits.max_header_bytes, " bytes"));
  return json_error(400, cat("malformed HTTP request: ", ec.message()));
}

HttpRequest request_from_message(const http::request<http::string_body>& msg) {
  HttpRequest req;
  req.method = std::string(msg.method_string());
  const std::string target(msg.target());
  const auto q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string::npos) req.query = target.substr(q + 1);
  req.content_type = std::string(msg[http::field::content_type]);
  req.body = msg.body();
  return req;
}

}  // namespace

HttpParse parse_http_request(std::string_view bytes, const HttpLimits& limits) {
  RequestParser parser;
  apply_limits(parser, limits);
  parser.eager(true);
  beast::error_code ec;
  std::size_t used = 0;
  while (!ec && !parser.is_done() && used < bytes.size())
    used += parser.put(asio::buffer(bytes.data() + used, bytes.size() - used), ec);
  if (!ec && !parser.is_done()) {
    parser.put_eof(ec);
    if (!ec && !parser.is_done()) ec = http::error::partial_message;
  }
  HttpParse out;
  if (ec) {
    out.error = read_error_response(ec, limits);
    return out;
  }
  out.request = request_from_message(parser.get());
  return out;
}

namespace {

// One thread running heavy requests in order; a bounded count of those waiting or running.
class Worker {
 public:
  explicit Worker(std::size_t max_queued) : max_(max_queued), thread_([this] { loop(); }) {}
  ~Worker() {
    {
      std::lock_guard<std::mutex> l(m_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  bool try_post(std::function<void()> job) {
    std::lock_guard<std::mutex> l(m_);
    if (jobs_.size() + running_ >= max_) return false;
    jobs_.push_back(std::move(job));
    cv_.notify_one();
    return true;
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> l(m_);
        cv_.wait(l, [&] { return done_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
        running_ = 1;
      }
      job();
      std::lock_guard<std::mutex> l(m_);
      running_ = 0;
    }
  }
  std::size_t max_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::size_t running_ = 0;
  bool done_ = false;
  std::thread thread_;
};

HttpResponse safe_handle(const HttpRoutes& routes, const HttpRequest& req) {
  try {
    return routes.handle(req);
  } catch (const std::exception& e) {
    log::warn("serve: ", req.method, " ", req.path, ": ", e.what());
    return json_error(500, cat("internal error: ", e.what()));
  }
}

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(HttpLimits l, HttpRoutes r, HttpHeaders h)
      : limits(l),
        routes(std::move(r)),
        headers(std::move(h)),
        acceptor(ioc),
        signals(ioc, SIGINT, SIGTERM),
        worker(l.max_queued) {}

  HttpLimits limits;
  HttpRoutes routes;
  HttpHeaders headers;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  std::atomic<std::size_t> connections{0};
  Worker worker;

  void accept();
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<HttpServer::Impl> server)
      : stream_(std::move(socket)), server_(std::move(server)) {
    ++server_->connections;
  }
  ~Session() { --server_->connections; }

  void start(bool reject) {
    if (reject) {
      send(json_error(503, "too many connections; try again shortly"), false);
      return;
    }
    read();
  }

 private:
  void read() {
    parser_.emplace();
    apply_limits(*parser_, server_->limits);
    stream_.expires_after(server_->limits.request_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted)
      return close();
    if (ec) return send(read_error_response(ec, server_->limits), false);
    const auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    HttpRequest req = request_from_message(msg);
    stream_.expires_never();
    if (server_->routes.heavy && server_->routes.heavy(req)) {
      auto self = shared_from_this();
      const bool queued = server_->worker.try_post([self, req] {
        HttpResponse r = safe_handle(self->server_->routes, req);
        asio::post(self->stream_.get_executor(),
                   [self, r = std::move(r)] { self->send(r, self->keep_alive_); });
      });
      if (!queued) {
        HttpResponse busy = json_error(503, "the model is busy with other requests; try again shortly");
        busy.headers.push_back({"Retry-After", "1"});
        send(busy, keep_alive_);
      }
      return;
    }
    send(safe_handle(server_->routes, req), keep_alive_);
  }

  void send(const HttpResponse& r, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), 11);
    res->set(http::field::server, "saelab");
    res->set(http::field::content_type, r.content_type);
    res->set(http::field::cache_control, "no-store");
    for (const auto& [k, v] : server_->headers) res->set(k, v);
    for (const auto& [k, v] : r.headers) res->set(k, v);
    res->keep_alive(keep_alive);
    res->body() = r.body;
    res->prepare_payload();
    stream_.expires_after(server_->limits.request_timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, keep_alive](beast::error_code ec, std::size_t) {
                        if (ec) return self->close();
                        if (!keep_alive) return self->drain();
                        self->read();
                      });
  }

  // Closing a socket with unread bytes sends a reset, which can destroy the response before the
  // client reads it (a body over the limit is still arriving). So: stop sending, read and drop
  // what the client still sends, for at most request_timeout and 1 MiB, then close.
  void drain() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(server_->limits.request_timeout);
    drain_some(std::size_t(1) << 20);
  }
  void drain_some(std::size_t left) {
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this(), left](beast::error_code ec, std::size_t n) {
                              if (ec || n >= left) return self->close();
                              self->drain_some(left - n);
                            });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  std::array<char, 4096> discard_{};

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<HttpServer::Impl> server_;
  bool keep_alive_ = false;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept(asio::make_strand(ioc),
                        [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
                          if (ec == asio::error::operation_aborted) return;
                          if (!ec) {
                            const bool reject = self->connections.load() >= self->limits.max_connections;
                            std::make_shared<Session>(std::move(s), self)->start(reject);
                          }
                          self->accept();
                        });
}

HttpServer::HttpServer(const std::string& host, unsigned short port, HttpLimits limits, HttpRoutes routes,
                       HttpHeaders common_headers)
    : impl_(std::make_shared<Impl>(limits, std::move(routes), std::move(common_headers))) {
  beast::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  SAELAB_CHECK(!ec, UsageError, "--host '", host, "' is not an IP address (e.g. 127.0.0.1, ::1, 0.0.0.0)");
  const tcp::endpoint ep(address, port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  SAELAB_CHECK(!ec, Error, "serve: cannot listen on ", host, ":", port, ": ", ec.message(),
               "; choose another --port (0 picks a free one)");
}

HttpServer::~HttpServer() {
  stop();
}

unsigned short HttpServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

void HttpServer::run(int io_threads) {
  impl_->signals.async_wait([impl = impl_](beast::error_code, int) { impl->ioc.stop(); });
  impl_->accept();
  std::vector<std::thread> threads;
  for (int i = 1; i < io_threads; ++i) threads.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  for (auto& t : threads) t.join();
}

void HttpServer::stop() {
  if (impl_) impl_->ioc.stop();
}

}  // namespace saelab
