-- AlterTable
ALTER TABLE "Thread" ADD COLUMN     "mode" TEXT NOT NULL DEFAULT 'auto',
ADD COLUMN     "resumeAt" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "QueueItem" ADD COLUMN     "delivery" TEXT NOT NULL DEFAULT 'queue',
ADD COLUMN     "authorSub" TEXT,
ADD COLUMN     "authorName" TEXT;
