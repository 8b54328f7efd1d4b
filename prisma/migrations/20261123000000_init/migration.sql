-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateTable
CREATE TABLE "Event" (
    "seq" BIGSERIAL NOT NULL,
    "threadId" TEXT NOT NULL,
    "workspaceId" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "type" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "commandId" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Event_pkey" PRIMARY KEY ("seq")
);

-- CreateTable
CREATE TABLE "CommandResult" (
    "threadId" TEXT NOT NULL,
    "commandId" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "result" JSONB NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "CommandResult_pkey" PRIMARY KEY ("threadId","commandId")
);

-- CreateTable
CREATE TABLE "Thread" (
    "id" TEXT NOT NULL,
    "workspaceId" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "archived" BOOLEAN NOT NULL DEFAULT false,
    "deleted" BOOLEAN NOT NULL DEFAULT false,
    "sessionStatus" TEXT NOT NULL,
    "sessionError" TEXT,
    "activeTurnId" TEXT,
    "paused" BOOLEAN NOT NULL DEFAULT false,
    "pauseReason" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Thread_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "QueueItem" (
    "id" TEXT NOT NULL,
    "threadId" TEXT NOT NULL,
    "messageId" TEXT NOT NULL,
    "text" TEXT NOT NULL,
    "attachments" JSONB NOT NULL,
    "options" JSONB NOT NULL,
    "status" TEXT NOT NULL,
    "failureReason" TEXT,
    "position" TEXT NOT NULL,
    "attempts" INTEGER NOT NULL,
    "notBefore" TIMESTAMPTZ(3),
    "dispatchId" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "QueueItem_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Turn" (
    "threadId" TEXT NOT NULL,
    "turnId" TEXT NOT NULL,
    "queueItemId" TEXT,
    "status" TEXT NOT NULL,
    "error" TEXT,
    "startedAt" TIMESTAMPTZ(3) NOT NULL,
    "endedAt" TIMESTAMPTZ(3),

    CONSTRAINT "Turn_pkey" PRIMARY KEY ("threadId","turnId")
);

-- CreateTable
CREATE TABLE "Message" (
    "threadId" TEXT NOT NULL,
    "messageId" TEXT NOT NULL,
    "queueItemId" TEXT NOT NULL,
    "turnId" TEXT NOT NULL,
    "text" TEXT NOT NULL,
    "attachments" JSONB NOT NULL,
    "sentAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Message_pkey" PRIMARY KEY ("threadId","messageId")
);

-- CreateTable
CREATE TABLE "DocState" (
    "threadId" TEXT NOT NULL,
    "state" BYTEA NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "DocState_pkey" PRIMARY KEY ("threadId")
);

-- CreateTable
CREATE TABLE "DocUpdate" (
    "id" BIGSERIAL NOT NULL,
    "threadId" TEXT NOT NULL,
    "update" BYTEA NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "DocUpdate_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Event_workspaceId_seq_idx" ON "Event"("workspaceId", "seq");

-- CreateIndex
CREATE INDEX "Event_type_seq_idx" ON "Event"("type", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "Event_threadId_version_key" ON "Event"("threadId", "version");

-- CreateIndex
CREATE INDEX "Thread_workspaceId_createdAt_id_idx" ON "Thread"("workspaceId", "createdAt", "id");

-- CreateIndex
CREATE INDEX "QueueItem_threadId_position_id_idx" ON "QueueItem"("threadId", "position", "id");

-- CreateIndex
CREATE INDEX "QueueItem_status_idx" ON "QueueItem"("status");

-- CreateIndex
CREATE UNIQUE INDEX "QueueItem_threadId_messageId_key" ON "QueueItem"("threadId", "messageId");

-- CreateIndex
CREATE INDEX "DocUpdate_threadId_id_idx" ON "DocUpdate"("threadId", "id");

