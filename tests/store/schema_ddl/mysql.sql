CREATE INDEX ix_delayed_job_cancel_requests_worker ON delayed_job_cancel_requests (worker);

CREATE INDEX ix_delayed_job_minutes_minute ON delayed_job_minutes (minute);

CREATE INDEX ix_delayed_job_results_expires ON delayed_job_results (expires_at);

CREATE INDEX ix_delayed_job_state_history_state ON delayed_job_state_history (state_id, id);

CREATE INDEX ix_delayed_job_states_identifier ON delayed_job_states (job_class, identifier);

CREATE INDEX ix_delayed_job_states_job ON delayed_job_states (delayed_job_id);

CREATE INDEX ix_delayed_job_states_state ON delayed_job_states (state);

CREATE INDEX ix_delayed_job_unique_keys_job ON delayed_job_unique_keys (job_id);

CREATE INDEX ix_delayed_job_workers_host ON delayed_job_workers (hostname);

CREATE INDEX ix_delayed_jobs_due ON delayed_jobs (priority, failed_at, run_at, id);

CREATE INDEX ix_delayed_jobs_locked_by ON delayed_jobs (locked_by);

CREATE INDEX ix_delayed_jobs_queue ON delayed_jobs (queue);

CREATE INDEX ix_delayed_jobs_strand ON delayed_jobs (strand, id);

CREATE TABLE delayed_job_cancel_requests (
	job_id BIGINT NOT NULL, 
	worker VARCHAR(255) NOT NULL, 
	requested_at DATETIME(6) NOT NULL, 
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
	occurrence DATETIME(6) NOT NULL, 
	job_id BIGINT, 
	hostname VARCHAR(255) NOT NULL, 
	enqueued_at DATETIME(6) NOT NULL, 
	PRIMARY KEY (name, occurrence)
);

CREATE TABLE delayed_job_results (
	id VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	handler MEDIUMTEXT NOT NULL, 
	worker_ids TEXT NOT NULL, 
	return_value MEDIUMTEXT, 
	errors MEDIUMTEXT, 
	enqueued_at DATETIME(6) NOT NULL, 
	started_at DATETIME(6), 
	last_attempted_at DATETIME(6), 
	finished_at DATETIME(6), 
	expires_at DATETIME(6), 
	PRIMARY KEY (id)
);

CREATE TABLE delayed_job_state_history (
	id BIGINT NOT NULL AUTO_INCREMENT, 
	state_id BIGINT NOT NULL, 
	state VARCHAR(32) NOT NULL, 
	at DATETIME(6) NOT NULL, 
	hostname VARCHAR(255), 
	note TEXT, 
	PRIMARY KEY (id)
);

CREATE TABLE delayed_job_states (
	id BIGINT NOT NULL AUTO_INCREMENT, 
	job_class VARCHAR(255) NOT NULL, 
	identifier VARCHAR(255) NOT NULL, 
	gate VARCHAR(16) NOT NULL, 
	state VARCHAR(32) NOT NULL, 
	hostname VARCHAR(255), 
	delayed_job_id BIGINT, 
	queue VARCHAR(255), 
	priority INTEGER NOT NULL, 
	payload MEDIUMTEXT NOT NULL, 
	last_error MEDIUMTEXT, 
	created_at DATETIME(6) NOT NULL, 
	updated_at DATETIME(6) NOT NULL, 
	started_at DATETIME(6), 
	finished_at DATETIME(6), 
	PRIMARY KEY (id)
);

CREATE TABLE delayed_job_unique_keys (
	name VARCHAR(255) NOT NULL, 
	job_id BIGINT, 
	scope VARCHAR(16) NOT NULL, 
	expires_at DATETIME(6), 
	PRIMARY KEY (name)
);

CREATE TABLE delayed_job_workers (
	name VARCHAR(255) NOT NULL, 
	hostname VARCHAR(255) NOT NULL, 
	pid INTEGER NOT NULL, 
	started_at DATETIME(6) NOT NULL, 
	last_seen DATETIME(6) NOT NULL, 
	current_job_id BIGINT, 
	PRIMARY KEY (name)
);

CREATE TABLE delayed_jobs (
	id BIGINT NOT NULL AUTO_INCREMENT, 
	priority INTEGER NOT NULL, 
	attempts INTEGER NOT NULL, 
	handler MEDIUMTEXT NOT NULL, 
	last_error MEDIUMTEXT, 
	run_at DATETIME(6) NOT NULL, 
	locked_at DATETIME(6), 
	locked_by VARCHAR(255), 
	failed_at DATETIME(6), 
	queue VARCHAR(255), 
	created_at DATETIME(6) NOT NULL, 
	updated_at DATETIME(6) NOT NULL, 
	strand VARCHAR(255), 
	strand_limit INTEGER, 
	PRIMARY KEY (id)
);
