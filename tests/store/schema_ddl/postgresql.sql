CREATE INDEX ix_delayed_job_cancel_requests_worker ON delayed_job_cancel_requests (worker);

CREATE INDEX ix_delayed_job_minutes_minute ON delayed_job_minutes (minute);

CREATE INDEX ix_delayed_job_results_expires ON delayed_job_results (expires_at);

CREATE INDEX ix_delayed_job_state_history_state ON delayed_job_state_history (state_id, id);

CREATE INDEX ix_delayed_job_states_identifier ON delayed_job_states (job_class, identifier);

CREATE INDEX ix_delayed_job_states_job ON delayed_job_states (delayed_job_id);

CREATE INDEX ix_delayed_job_states_state ON delayed_job_states (state);

CREATE INDEX ix_delayed_job_unique_keys_job ON delayed_job_unique_keys (job_id);

CREATE INDEX ix_delayed_job_workers_host ON delayed_job_workers (hostname);

CREATE INDEX ix_delayed_jobs_due ON delayed_jobs (priority, run_at, id) WHERE failed_at IS NULL;

CREATE INDEX ix_delayed_jobs_failed ON delayed_jobs (failed_at) WHERE failed_at IS NOT NULL;

CREATE INDEX ix_delayed_jobs_locked_by ON delayed_jobs (locked_by);

CREATE INDEX ix_delayed_jobs_queue ON delayed_jobs (queue);

CREATE INDEX ix_delayed_jobs_strand ON delayed_jobs (strand, id);

CREATE TABLE delayed_job_cancel_requests (
	job_id BIGINT NOT NULL, 
	worker VARCHAR(255) NOT NULL, 
	requested_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (job_id)
);

CREATE TABLE delayed_job_minutes (
	hostname VARCHAR(255) NOT NULL, 
	minute INTEGER NOT NULL, 
	done INTEGER NOT NULL, 
	failed INTEGER NOT NULL, 
	depth INTEGER, 
	PRIMARY KEY (hostname, minute)
);

CREATE TABLE delayed_job_recurring_runs (
	name VARCHAR(255) NOT NULL, 
	occurrence TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	job_id BIGINT, 
	hostname VARCHAR(255) NOT NULL, 
	enqueued_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (name, occurrence)
);

CREATE TABLE delayed_job_results (
	id VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	handler TEXT NOT NULL, 
	worker_ids TEXT NOT NULL, 
	return_value TEXT, 
	errors TEXT, 
	enqueued_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	started_at TIMESTAMP WITHOUT TIME ZONE, 
	last_attempted_at TIMESTAMP WITHOUT TIME ZONE, 
	finished_at TIMESTAMP WITHOUT TIME ZONE, 
	expires_at TIMESTAMP WITHOUT TIME ZONE, 
	PRIMARY KEY (id)
);

CREATE TABLE delayed_job_state_history (
	id BIGSERIAL NOT NULL, 
	state_id BIGINT NOT NULL, 
	state VARCHAR(32) NOT NULL, 
	at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	hostname VARCHAR(255), 
	note TEXT, 
	PRIMARY KEY (id)
);

CREATE TABLE delayed_job_states (
	id BIGSERIAL NOT NULL, 
	job_class VARCHAR(255) NOT NULL, 
	identifier VARCHAR(255) NOT NULL, 
	gate VARCHAR(16) NOT NULL, 
	state VARCHAR(32) NOT NULL, 
	hostname VARCHAR(255), 
	delayed_job_id BIGINT, 
	queue VARCHAR(255), 
	priority INTEGER NOT NULL, 
	payload TEXT NOT NULL, 
	last_error TEXT, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	started_at TIMESTAMP WITHOUT TIME ZONE, 
	finished_at TIMESTAMP WITHOUT TIME ZONE, 
	PRIMARY KEY (id)
);

CREATE TABLE delayed_job_unique_keys (
	name VARCHAR(255) NOT NULL, 
	job_id BIGINT, 
	scope VARCHAR(16) NOT NULL, 
	expires_at TIMESTAMP WITHOUT TIME ZONE, 
	PRIMARY KEY (name)
);

CREATE TABLE delayed_job_workers (
	name VARCHAR(255) NOT NULL, 
	hostname VARCHAR(255) NOT NULL, 
	pid INTEGER NOT NULL, 
	started_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	last_seen TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	current_job_id BIGINT, 
	PRIMARY KEY (name)
);

CREATE TABLE delayed_jobs (
	id BIGSERIAL NOT NULL, 
	priority INTEGER NOT NULL, 
	attempts INTEGER NOT NULL, 
	handler TEXT NOT NULL, 
	last_error TEXT, 
	run_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	locked_at TIMESTAMP WITHOUT TIME ZONE, 
	locked_by VARCHAR(255), 
	failed_at TIMESTAMP WITHOUT TIME ZONE, 
	queue VARCHAR(255), 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	strand VARCHAR(255), 
	strand_limit INTEGER, 
	PRIMARY KEY (id)
);
