-- thread.history pages a thread's messages newest first by ("sentAt", "messageId"):
-- read backwards along this index, a page costs its own rows, not a sort of the thread's.
-- CreateIndex
CREATE INDEX "Message_threadId_sentAt_messageId_idx" ON "Message"("threadId", "sentAt", "messageId");
