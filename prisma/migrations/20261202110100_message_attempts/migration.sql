-- How many start attempts a sent message took (from message.sent); messages sent before
-- events carried it keep null ("not recorded"), as a rebuild from the log would give.
-- AlterTable
ALTER TABLE "Message" ADD COLUMN     "attempts" INTEGER;
