-- AlterTable
ALTER TABLE "Thread" ADD COLUMN     "runtimeSessionId" TEXT;

