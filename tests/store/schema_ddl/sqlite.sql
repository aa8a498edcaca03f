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
	job_id INTEGER NOT NULL, 
	worker VARCHAR(255) NOT NULL, 
	requested_at DATETIME NOT NULL, 
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
	occurrence DATETIME NOT NULL, 
	job_id INTEGER, 
	hostname VARCHAR(255) NOT NULL, 
	enqueued_at DATETIME NOT NULL, 
	PRIMARY KEY (name, occurrence)
);

CREATE TABLE delayed_job_results (
	id VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	handler TEXT NOT NULL, 
	worker_ids TEXT NOT NULL, 
	return_value TEXT, 
	errors TEXT, 
	enqueued_at DATETIME NOT NULL, 
	started_at DATETIME, 
	last_attempted_at DATETIME, 
	finished_at DATETIME, 
	expires_at DATETIME, 
	PRIMARY KEY (id)
);

CREATE TABLE delayed_job_state_history (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	state_id INTEGER NOT NULL, 
	state VARCHAR(32) NOT NULL, 
	at DATETIME NOT NULL, 
	hostname VARCHAR(255), 
	note TEXT
);

CREATE TABLE delayed_job_states (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	job_class VARCHAR(255) NOT NULL, 
	identifier VARCHAR(255) NOT NULL, 
	gate VARCHAR(16) NOT NULL, 
	state VARCHAR(32) NOT NULL, 
	hostname VARCHAR(255), 
	delayed_job_id INTEGER, 
	queue VARCHAR(255), 
	priority INTEGER NOT NULL, 
	payload TEXT NOT NULL, 
	last_error TEXT, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME
);

CREATE TABLE delayed_job_unique_keys (
	name VARCHAR(255) NOT NULL, 
	job_id INTEGER, 
	scope VARCHAR(16) NOT NULL, 
	expires_at DATETIME, 
	PRIMARY KEY (name)
);

CREATE TABLE delayed_job_workers (
	name VARCHAR(255) NOT NULL, 
	hostname VARCHAR(255) NOT NULL, 
	pid INTEGER NOT NULL, 
	started_at DATETIME NOT NULL, 
	last_seen DATETIME NOT NULL, 
	current_job_id INTEGER, 
	PRIMARY KEY (name)
);

CREATE TABLE delayed_jobs (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	priority INTEGER NOT NULL, 
	attempts INTEGER NOT NULL, 
	handler TEXT NOT NULL, 
	last_error TEXT, 
	run_at DATETIME NOT NULL, 
	locked_at DATETIME, 
	locked_by VARCHAR(255), 
	failed_at DATETIME, 
	queue VARCHAR(255), 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	strand VARCHAR(255), 
	strand_limit INTEGER
);
