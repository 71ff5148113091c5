-- Databases and roles of the cluster layout; passwords are set from .env by the operator.
CREATE ROLE airflow LOGIN;
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE superset LOGIN;
CREATE DATABASE superset OWNER superset;
CREATE ROLE shop LOGIN;
CREATE DATABASE shop OWNER shop;
