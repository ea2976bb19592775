// TLS on cairn-server's listeners: HTTPS and WSS round trips with certificates made by
// `openssl` at run time; curl (a real client that checks certificates) refuses an expired
// one and one for another host; SIGHUP gives new connections a new certificate while an open
// WSS connection keeps working on the old one; a broken file on SIGHUP keeps the one in use;
// cairnctl over https with --cacert; a key that is not the certificate's exits 2.
#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "clients.hpp"
#include "run_program.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

using namespace cairn::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A self-signed certificate and its key in `dir`/`name`.pem and `dir`/`name`.key: for
// `alt_name` (an X.509 subjectAltName), valid for `days` (-1: expired yesterday).
void make_certificate(const fs::path& dir, const std::string& name, const std::string& alt_name, int days) {
  auto key = (dir / (name + ".key")).string();
  auto csr = (dir / (name + ".csr")).string();
  auto ext = (dir / (name + ".ext")).string();
  std::ofstream(ext) << "subjectAltName=" << alt_name << "\n";
  for (std::vector<std::string> step :
       {std::vector<std::string>{"/usr/bin/openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                                 "ec_paramgen_curve:P-256", "-out", key},
        std::vector<std::string>{"/usr/bin/openssl", "req", "-new", "-key", key, "-subj", "/CN=" + name, "-out", csr},
        std::vector<std::string>{"/usr/bin/openssl", "x509", "-req", "-in", csr, "-signkey", key, "-days",
                                 std::to_string(days), "-extfile", ext, "-out", (dir / (name + ".pem")).string()}}) {
    auto got = run_program(step, 30s);
    INFO(got.output);
    REQUIRE(got.exit_status == 0);
  }
}

// curl over HTTPS trusting `ca`: its exit status (0, or 60 when it refuses the certificate)
// and what it printed.
ProgramResult curl(const std::string& ca, const std::string& url, std::vector<std::string> more = {}) {
  std::vector<std::string> args{"/usr/bin/curl", "-sS", "--max-time", "10", "--cacert", ca};
  args.insert(args.end(), more.begin(), more.end());
  args.push_back(url);
  return run_program(args, 20s);
}

// Puts certificate `name` where the server reads it, as a deploy would (rename into place).
void install(const fs::path& dir, const std::string& name) {
  fs::copy_file(dir / (name + ".pem"), dir / "serving.pem.new", fs::copy_options::overwrite_existing);
  fs::copy_file(dir / (name + ".key"), dir / "serving.key.new", fs::copy_options::overwrite_existing);
  fs::rename(dir / "serving.key.new", dir / "serving.key");
  fs::rename(dir / "serving.pem.new", dir / "serving.pem");
}

}  // namespace

TEST_CASE("TLS: HTTPS and WSS round trips, refused certificates, SIGHUP reload without dropping connections") {
  TempDir dir;
  auto certs = dir.path() / "certs";
  fs::create_directories(certs);
  make_certificate(certs, "one", "IP:127.0.0.1", 2);
  make_certificate(certs, "two", "IP:127.0.0.1", 2);
  make_certificate(certs, "elsewhere", "DNS:other.example", 2);
  make_certificate(certs, "expired", "IP:127.0.0.1", -1);
  install(certs, "one");
  std::ofstream(dir.path() / "token") << "a-token-for-the-tls-test\n";
  ServerProcess server(dir.path() / "data", {"--tls-cert", (certs / "serving.pem").string(), "--tls-key",
                                             (certs / "serving.key").string(), "--admin-port", "0",
                                             "--admin-token-file", (dir.path() / "token").string()});
  auto base = "https://127.0.0.1:" + std::to_string(server.port());
  auto one = (certs / "one.pem").string();
  auto two = (certs / "two.pem").string();

  auto booked = curl(one, base + "/book-seat?flightId=TLS1",
                     {"-X", "POST", "-H", "Content-Type: application/json", "-d", R"({"seatNumber":"1A","name":"Ada"})"});
  INFO(booked.output);
  CHECK(booked.exit_status == 0);
  CHECK(booked.output.find("booked successfully") != std::string::npos);
  // Plain HTTP sent to the HTTPS port: a plain 400 that says so.
  auto plain = run_program({"/usr/bin/curl", "-sS", "--max-time", "10", "-w", "%{http_code}",
                            "http://127.0.0.1:" + std::to_string(server.port()) + "/seats?flightId=TLS1"},
                           20s);
  CHECK(plain.output.find("use https://") != std::string::npos);
  CHECK(plain.output.find("400") != std::string::npos);
  // Not trusted: curl refuses (the server's certificate is not in the system's store).
  CHECK(run_program({"/usr/bin/curl", "-sS", "--max-time", "10", base + "/seats?flightId=TLS1"}, 20s).exit_status == 60);
  // The admin listener speaks TLS too; cairnctl with --cacert.
  auto admin = "https://127.0.0.1:" + std::to_string(server.admin_port());
  auto metrics = curl(one, admin + "/metrics", {"-H", "Authorization: Bearer a-token-for-the-tls-test"});
  CHECK(metrics.output.find("cairn_build_info{") != std::string::npos);
  auto ctl = run_program({CAIRNCTL_PATH, "--url", admin, "--cacert", one, "--token-file",
                          (dir.path() / "token").string(), "actors", "list", "FLIGHT"},
                         20s);
  INFO(ctl.output);
  CHECK(ctl.exit_status == 0);
  CHECK(ctl.output.find("TLS1") != std::string::npos);
  auto distrust = run_program({CAIRNCTL_PATH, "--url", admin, "--cacert", two, "--token-file",
                               (dir.path() / "token").string(), "actors", "list", "FLIGHT"},
                              20s);
  CHECK(distrust.exit_status == 1);
  CHECK(distrust.output.find("certificate verify failed") != std::string::npos);

  // WSS: the flight's socket answers and gets the broadcast of a booking.
  WssClient old_socket(server.port(), "/ws?flightId=TLS1", one);
  REQUIRE(old_socket.send(R"({"type":"getSeats"})"));
  auto seats = old_socket.read();
  REQUIRE(seats);
  CHECK(seats->find("Ada") != std::string::npos);

  // SIGHUP with certificate two in place: new connections get it, the open socket goes on.
  install(certs, "two");
  REQUIRE(::kill(server.pid(), SIGHUP) == 0);
  bool reloaded = false;
  for (int i = 0; i < 100 && !reloaded; ++i) {
    reloaded = curl(two, base + "/seats?flightId=TLS1").exit_status == 0;
    if (!reloaded) std::this_thread::sleep_for(50ms);
  }
  CHECK(reloaded);
  CHECK(curl(one, base + "/seats?flightId=TLS1").exit_status == 60);
  CHECK_THROWS_WITH_AS(WssClient(server.port(), "/ws?flightId=TLS1", one), doctest::Contains("TLS handshake failed"),
                       std::runtime_error);
  WssClient new_socket(server.port(), "/ws?flightId=TLS1", two);
  CHECK(curl(two, base + "/book-seat?flightId=TLS1",
             {"-X", "POST", "-H", "Content-Type: application/json", "-d", R"({"seatNumber":"1B","name":"Bob"})"})
            .exit_status == 0);
  auto broadcast = old_socket.read();
  REQUIRE(broadcast);
  CHECK(broadcast->find("Bob") != std::string::npos);
  auto also = new_socket.read();
  REQUIRE(also);
  CHECK(also->find("Bob") != std::string::npos);

  // A certificate for another host, then an expired one: curl refuses each.
  install(certs, "elsewhere");
  REQUIRE(::kill(server.pid(), SIGHUP) == 0);
  std::this_thread::sleep_for(300ms);
  auto wrong_host = curl((certs / "elsewhere.pem").string(), base + "/seats?flightId=TLS1");
  CHECK(wrong_host.exit_status == 60);
  CHECK(wrong_host.output.find("subject name") != std::string::npos);
  install(certs, "expired");
  REQUIRE(::kill(server.pid(), SIGHUP) == 0);
  std::this_thread::sleep_for(300ms);
  auto expired = curl((certs / "expired.pem").string(), base + "/seats?flightId=TLS1");
  CHECK(expired.exit_status == 60);
  CHECK(expired.output.find("expired") != std::string::npos);

  // A broken file on SIGHUP: the certificate in use stays, the server serves on.
  install(certs, "two");
  REQUIRE(::kill(server.pid(), SIGHUP) == 0);
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    back = curl(two, base + "/seats?flightId=TLS1").exit_status == 0;
    if (!back) std::this_thread::sleep_for(50ms);
  }
  REQUIRE(back);
  std::ofstream(certs / "serving.pem") << "not a certificate\n";
  REQUIRE(::kill(server.pid(), SIGHUP) == 0);
  std::this_thread::sleep_for(300ms);
  CHECK(curl(two, base + "/seats?flightId=TLS1").exit_status == 0);
  CHECK(old_socket.send(R"({"type":"getSeats"})"));
  CHECK(old_socket.read());
  CHECK(server.stop() == 0);
}

TEST_CASE("TLS: a key that is not the certificate's, or half a pair, exits 2 naming it") {
  TempDir dir;
  make_certificate(dir.path(), "one", "IP:127.0.0.1", 1);
  make_certificate(dir.path(), "two", "IP:127.0.0.1", 1);
  auto got = run_program({CAIRN_SERVER_PATH, "--port", "0", "--data-dir", (dir.path() / "data").string(), "--tls-cert",
                          (dir.path() / "one.pem").string(), "--tls-key", (dir.path() / "two.key").string()},
                         20s);
  CHECK(got.exit_status == 2);
  CHECK(got.output.find("two.key") != std::string::npos);
  got = run_program({CAIRN_SERVER_PATH, "--port", "0", "--data-dir", (dir.path() / "data").string(), "--tls-cert",
                     (dir.path() / "one.pem").string()},
                    20s);
  CHECK(got.exit_status == 2);
  CHECK(got.output.find("--tls-key") != std::string::npos);
}

TEST_CASE("TLS: cairn-load books over HTTPS and watches the broadcasts over WSS, trusting --cacert") {
  TempDir dir;
  make_certificate(dir.path(), "one", "IP:127.0.0.1", 1);
  make_certificate(dir.path(), "other", "IP:127.0.0.1", 1);
  ServerProcess server(dir.path() / "data", {"--tls-cert", (dir.path() / "one.pem").string(), "--tls-key",
                                             (dir.path() / "one.key").string()});
  auto url = "https://127.0.0.1:" + std::to_string(server.port());
  auto fanout = run_program({CAIRN_LOAD_PATH, "fanout", "--url", url, "--cacert", (dir.path() / "one.pem").string(),
                             "-d", "1", "-f", "2", "-s", "10", "--timeout", "20"},
                            90s);
  INFO(fanout.output);
  CHECK(fanout.exit_status == 0);
  CHECK(fanout.output.find("broadcast (booking seen by every socket)") != std::string::npos);
  auto book = run_program({CAIRN_LOAD_PATH, "book", "--url", url, "--cacert", (dir.path() / "one.pem").string(), "-d",
                           "1", "-f", "3", "-c", "4", "--timeout", "20"},
                          90s);
  INFO(book.output);
  CHECK(book.exit_status == 0);
  // A certificate it does not trust: every request fails with the TLS error, named.
  auto distrust = run_program({CAIRN_LOAD_PATH, "book", "--url", url, "--cacert",
                               (dir.path() / "other.pem").string(), "-d", "1", "-f", "1", "-c", "1", "--timeout", "5"},
                              90s);
  CHECK(distrust.exit_status != 0);
  CHECK(distrust.output.find("certificate verify failed") != std::string::npos);
}
