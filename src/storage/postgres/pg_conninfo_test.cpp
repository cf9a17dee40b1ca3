#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "storage/postgres/pg_connection.hpp"
#include "storage/postgres/postgres_store.hpp"

namespace bulwark {
namespace {

// Each test case runs in its own process, so the environment is ours to change.
class PostgresConninfoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("PGDATABASE");
    unsetenv("PGUSER");
    unsetenv("PGTARGETSESSIONATTRS");
  }
};

TEST_F(PostgresConninfoTest, DatabaseUrlWinsAndIsPassedAsIs) {
  const std::string url = "postgres://bulwark:s3cret@db.internal:6432/auth?sslmode=verify-full";
  Result<std::string> conninfo = PostgresConninfo("ignored:5432", url);
  ASSERT_TRUE(conninfo.ok()) << conninfo.error().message();
  EXPECT_EQ(*conninfo, url);

  const std::string keywords = "host=db port=5432 dbname=auth sslmode=require";
  conninfo = PostgresConninfo("", keywords);
  ASSERT_TRUE(conninfo.ok());
  EXPECT_EQ(*conninfo, keywords);
}

TEST_F(PostgresConninfoTest, GarbageDatabaseUrlNamesTheVariableWithoutEchoingIt) {
  for (const char* bad : {"postgres://u:hunter2@host/db?hunter2=1", "host=db password='hunter2",
                          "hunter2 is not a conninfo", "postgresql://[::1/db?password=hunter2"}) {
    Result<std::string> conninfo = PostgresConninfo("", bad);
    ASSERT_FALSE(conninfo.ok()) << bad;
    EXPECT_EQ(conninfo.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(conninfo.error().message().find("DATABASE_URL"), std::string::npos);
    EXPECT_EQ(conninfo.error().message().find("hunter2"), std::string::npos);
  }
}

TEST_F(PostgresConninfoTest, DbHostBecomesHostAndPortWithBulwarkDefaults) {
  Result<std::string> conninfo = PostgresConninfo("db.internal:6432", "");
  ASSERT_TRUE(conninfo.ok()) << conninfo.error().message();
  EXPECT_EQ(*conninfo, "host=db.internal port=6432 dbname=bulwark user=bulwark");

  conninfo = PostgresConninfo("postgres", "");
  ASSERT_TRUE(conninfo.ok());
  EXPECT_EQ(*conninfo, "host=postgres dbname=bulwark user=bulwark");

  conninfo = PostgresConninfo("10.0.0.7:5432", "");
  ASSERT_TRUE(conninfo.ok());
  EXPECT_EQ(*conninfo, "host=10.0.0.7 port=5432 dbname=bulwark user=bulwark");
}

TEST_F(PostgresConninfoTest, DbHostLeavesDatabaseAndUserToLibpqEnvironment) {
  setenv("PGDATABASE", "auth", 1);
  setenv("PGUSER", "svc", 1);
  Result<std::string> conninfo = PostgresConninfo("db:5432", "");
  ASSERT_TRUE(conninfo.ok());
  EXPECT_EQ(*conninfo, "host=db port=5432");
}

TEST_F(PostgresConninfoTest, DbHostAcceptsIpv6AndHostLists) {
  Result<std::string> conninfo = PostgresConninfo("[::1]:5433", "");
  ASSERT_TRUE(conninfo.ok()) << conninfo.error().message();
  EXPECT_EQ(*conninfo, "host=::1 port=5433 dbname=bulwark user=bulwark");

  conninfo = PostgresConninfo("fd00::7", "");
  ASSERT_TRUE(conninfo.ok());
  EXPECT_EQ(*conninfo, "host=fd00::7 dbname=bulwark user=bulwark");

  conninfo = PostgresConninfo("pg-0:5432,pg-1", "");
  ASSERT_TRUE(conninfo.ok());
  EXPECT_EQ(*conninfo,
            "host=pg-0,pg-1 port=5432,5432 dbname=bulwark user=bulwark "
            "target_session_attrs=read-write");
}

TEST_F(PostgresConninfoTest, GarbageDbHostNamesTheVariable) {
  for (const char* bad :
       {"db:", "db:0", "db:65536", "db:54x", ":5432", "db host", "db;x=1", "host=evil", "db:5432,",
        "[::1", "[]:5432", "[::1]5432", "postgres://u:hunter2@db/x", "-db", "db'x"}) {
    Result<std::string> conninfo = PostgresConninfo(bad, "");
    ASSERT_FALSE(conninfo.ok()) << bad;
    EXPECT_EQ(conninfo.error().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_EQ(conninfo.error().message().rfind("DB_HOST", 0), 0u) << conninfo.error().message();
    EXPECT_EQ(conninfo.error().message().find("hunter2"), std::string::npos);
  }
}

TEST_F(PostgresConninfoTest, NeitherVariableIsInvalidArgument) {
  Result<std::string> conninfo = PostgresConninfo("", "");
  ASSERT_FALSE(conninfo.ok());
  EXPECT_EQ(conninfo.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(PostgresConninfoTest, TheResultParsesAsConnectSettings) {
  Result<std::string> conninfo = PostgresConninfo("[::1]:5433,db", "");
  ASSERT_TRUE(conninfo.ok());
  Result<postgres::ConnectSettings> settings = postgres::MakeConnectSettings(
      *conninfo, std::chrono::milliseconds(100), std::chrono::milliseconds(200));
  ASSERT_TRUE(settings.ok()) << settings.error().message();
  bool saw_host = false;
  for (size_t i = 0; i < settings->keywords.size(); ++i) {
    if (settings->keywords[i] == "host") {
      saw_host = true;
      EXPECT_EQ(settings->values[i], "::1,db");
    }
  }
  EXPECT_TRUE(saw_host);
  // Bulwark's own settings come last so they win over the conninfo.
  ASSERT_GE(settings->keywords.size(), 2u);
  EXPECT_EQ(settings->keywords[settings->keywords.size() - 2], "client_encoding");
  EXPECT_EQ(settings->statement_timeout.count(), 200);
}

TEST(MakeConnectSettingsTest, RejectsMalformedConninfoWithoutEchoingIt) {
  Result<postgres::ConnectSettings> settings = postgres::MakeConnectSettings(
      "host=db password='hunter2", std::chrono::milliseconds(100), std::chrono::milliseconds(100));
  ASSERT_FALSE(settings.ok());
  EXPECT_EQ(settings.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(settings.error().message().find("hunter2"), std::string::npos);
}

TEST(MakeConnectSettingsTest, AcceptsUriAndEmptyString) {
  EXPECT_TRUE(postgres::MakeConnectSettings("postgresql://u:p@h:1/d?sslmode=disable",
                                            std::chrono::milliseconds(1),
                                            std::chrono::milliseconds(1))
                  .ok());
  EXPECT_TRUE(
      postgres::MakeConnectSettings("", std::chrono::milliseconds(1), std::chrono::milliseconds(1))
          .ok());
}

TEST(OpenPostgresStoresTest, RejectsBadOptionsBeforeConnecting) {
  PostgresOptions options;
  options.conninfo = "host=127.0.0.1 port=1";
  options.pool_size = 0;
  Result<Stores> stores = OpenPostgresStores(options);
  ASSERT_FALSE(stores.ok());
  EXPECT_EQ(stores.error().code(), ErrorCode::kInvalidArgument);
  options.pool_size = 1;
  options.statement_timeout = std::chrono::milliseconds(0);
  EXPECT_EQ(MigratePostgres(options).error().code(), ErrorCode::kInvalidArgument);
}

TEST(OpenPostgresStoresTest, NothingListeningIsUnavailable) {
  // Port 1 on loopback: refused at once (no server is needed for this).
  PostgresOptions options;
  options.conninfo = "host=127.0.0.1 port=1 user=nobody dbname=nothing";
  Result<Stores> stores = OpenPostgresStores(options);
  ASSERT_FALSE(stores.ok());
  EXPECT_EQ(stores.error().code(), ErrorCode::kUnavailable) << stores.error().message();
}

}  // namespace
}  // namespace bulwark
