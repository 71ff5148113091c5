"""Spark mode's settings from the environment: what the Thrift server and every JVM of the cluster
are started with (no Java needed: nothing is started here)."""

from __future__ import annotations

import pytest

from stackctl import spark_service


def test_spark_conf_pairs_reach_the_thrift_server_over_the_stack_s_own(stack, monkeypatch):
    monkeypatch.setenv("SPARK_CONF", "spark.sql.shuffle.partitions=8  spark.sql.session.timeZone=Europe/Paris")
    conf = spark_service.thrift_conf(stack, spark_service.config())
    assert conf["spark.sql.shuffle.partitions"] == "8"
    assert conf["spark.sql.session.timeZone"] == "Europe/Paris"  # the operator's word wins
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"  # the rest stays


@pytest.mark.parametrize("text", ["spark.sql.shuffle.partitions", "shuffle.partitions=8", "spark.x="])
def test_a_spark_conf_word_that_is_not_a_setting_is_refused_naming_it(monkeypatch, text):
    monkeypatch.setenv("SPARK_CONF", f"spark.ui.enabled=true {text}")
    with pytest.raises(spark_service.SparkError, match="SPARK_CONF") as failure:
        spark_service.config()
    assert repr(text) in str(failure.value)


def test_every_jvm_gets_the_log_configuration_and_the_extra_options(stack, monkeypatch):
    monkeypatch.setenv("SPARK_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1")
    cfg = spark_service.config()
    conf = spark_service.thrift_conf(stack, cfg)
    log = f"-Dlog4j2.configurationFile=file:{spark_service.log_config(stack)}"
    for options in (conf["spark.driver.extraJavaOptions"], conf["spark.executor.extraJavaOptions"]):
        assert log in options and options.endswith("-XX:TieredStopAtLevel=1"), options
    assert spark_service.java_options(stack, cfg) == f"{log} -XX:TieredStopAtLevel=1"  # master and workers


def test_log_level_is_warn_unless_set_and_an_unknown_level_is_refused(monkeypatch):
    monkeypatch.delenv("SPARK_LOG_LEVEL", raising=False)
    assert spark_service.config().log_level == "warn"
    monkeypatch.setenv("SPARK_LOG_LEVEL", "INFO")
    assert spark_service.config().log_level == "info"
    monkeypatch.setenv("SPARK_LOG_LEVEL", "verbose")
    with pytest.raises(spark_service.SparkError, match="SPARK_LOG_LEVEL"):
        spark_service.config()
